"""Chat services read shoutrrr's own URLs as shoutrrr does (nicholas-fedor/shoutrrr).

Every case names the file of shoutrrr's repository its URL comes from. Where
eventbus is deliberately stricter than shoutrrr, the case says why.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from eventbus.errors import ChannelConfigError

from .parity import Case, case, check, first_request, made

SLACK_HOOK = "AAAAAAAAA-BBBBBBBBB-123456789123456789123456"
SLACK_HOOK_URL = "https://hooks.slack.com/services/AAAAAAAAA/BBBBBBBBB/123456789123456789123456"
SLACK_BOT = "123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N"
TELEGRAM = "https://api.telegram.org/bot12345:mock-token/sendMessage"
WORKFLOW = (
    "https://prod-00.westus.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke"
    "?api-version=2016-06-00&sp=/triggers/manual/run&sv=1.0&sig=XXXXXXXX"
)
DISCORD_SERVICE = "pkg/services/chat/discord/discord_service_test.go"
DISCORD_CONFIG = "pkg/services/chat/discord/discord_config_test.go"
SLACK = "pkg/services/chat/slack/slack_test.go"
TELEGRAM_TEST = "pkg/services/chat/telegram/telegram_test.go"
MATRIX = "pkg/services/chat/matrix/matrix_config_test.go"
MATTERMOST = "pkg/services/chat/mattermost/mattermost_test.go"
TEAMS = "pkg/services/chat/teams/teams_test.go"

ACCEPTED = [
    # -- discord: discord://TOKEN@WEBHOOK_ID[/raw]
    case(
        "discord://test-token@123456789",
        DISCORD_CONFIG,  # from https://discord.com/api/webhooks/123456789/test-token
        "https://discord.com/api/webhooks/123456789/test-token?wait=true",
        id="discord",
    ),
    case(
        "discord://test-token@123456789?thread_id=987654321",
        DISCORD_CONFIG,
        "https://discord.com/api/webhooks/123456789/test-token?wait=true&thread_id=987654321",
        id="discord-thread",
    ),
    case(
        "discord://token@123456789?thread_id=%20%20123456789%20%20",
        DISCORD_CONFIG,  # the thread id is trimmed
        "https://discord.com/api/webhooks/123456789/token?wait=true&thread_id=123456789",
        id="discord-thread-trimmed",
    ),
    case(
        "discord://token@123456789?username=TestBot&avatar=https://example.com/avatar.png",
        DISCORD_SERVICE,
        "https://discord.com/api/webhooks/123456789/token?wait=true",
        json={"username": "TestBot", "avatar_url": "https://example.com/avatar.png"},
        id="discord-username-avatar",
    ),
    case(
        "discord://token@123456789?AvatarURL=https://example.com/avatar.png",
        "pkg/services/chat/discord/discord_config.go",  # key:"avatar,avatarurl"
        "https://discord.com/api/webhooks/123456789/token?wait=true",
        json={"avatar_url": "https://example.com/avatar.png"},
        id="discord-avatarurl-alias",
    ),
    case(
        "discord://token@123456789/raw?colorError=0xd60510&splitLines=no",
        "pkg/services/chat/discord/discord_config.go",  # JSON via /raw, colorError
        "https://discord.com/api/webhooks/123456789/token?wait=true",
        warns=("'colorError'", "'/raw'"),
        id="discord-raw-and-colours-warn",
    ),
    # -- slack: hook / bot tokens, and the legacy path form
    case(
        f"slack://hook:{SLACK_HOOK}@webhook?botname=testbot&color=3f00fe&title=Test+title",
        SLACK,
        SLACK_HOOK_URL,
        json={"username": "testbot"},
        id="slack-hook",
    ),
    case(
        "slack://testbot@AAAAAAAAA/BBBBBBBBB/123456789123456789123456",
        SLACK,  # the legacy form; the user is the bot name
        SLACK_HOOK_URL,
        json={"username": "testbot"},
        id="slack-legacy-botname",
    ),
    case(
        "slack://AAAAAAAAA/BBBBBBBBB/123456789123456789123456",
        SLACK,
        SLACK_HOOK_URL,
        id="slack-legacy",
    ),
    case(
        f"slack://xoxb:{SLACK_BOT}@C0123456789?username=ops",
        SLACK,  # username is an alias of botname (slack_config.go)
        "https://slack.com/api/chat.postMessage",
        headers={"Authorization": f"Bearer xoxb-{SLACK_BOT}"},
        json={"channel": "C0123456789", "username": "ops"},
        id="slack-bot",
    ),
    # -- telegram: previews on by default, as in shoutrrr; HTML (escaped) by default
    case(
        "telegram://12345:mock-token@telegram/?chats=@channel1",
        TELEGRAM_TEST,  # with a chat Telegram accepts (see STRICTER)
        TELEGRAM,
        json={"chat_id": "@channel1", "parse_mode": "HTML", "link_preview_options": None},
        id="telegram-defaults",
    ),
    case(
        "telegram://12345:mock-token@telegram/?chats=@channel1&parseMode=None",
        "pkg/services/chat/telegram/telegram_parsemode.go",  # None, Markdown, HTML, MarkdownV2
        TELEGRAM,
        json={
            "parse_mode": None,
            "text": "capsule.create failed: capsule c1 (team-1)\nOutcome: error\n"
            "Error: quota exceeded\nhttps://example.com/c1",
        },
        id="telegram-plain",
    ),
    case(
        "telegram://12345:mock-token@telegram/?channels=-1001,-1002",
        "pkg/services/chat/telegram/telegram_config.go",  # key:"chats,channels"
        TELEGRAM,
        json={"chat_id": -1001},
        id="telegram-channels-alias",
    ),
    case(
        "telegram://12345:mock-token@telegram/?chats=-1001&parsemode=HTML&notification=no"
        "&preview=no&title=Prod",
        "pkg/services/chat/telegram/telegram_config.go",
        TELEGRAM,
        json={
            "parse_mode": "HTML",
            "disable_notification": True,
            "link_preview_options": {"is_disabled": True},
        },
        id="telegram-options",
    ),
    # -- matrix: user/password login, rooms= or room=, disableTLS
    case(
        "matrix://testuser:testpass@matrix.example.com?room=!testroom:matrix.example.com",
        MATRIX,
        "https://matrix.example.com/_matrix/client/v3/login",
        json={"type": "m.login.password", "password": "testpass"},
        id="matrix-login-room",
    ),
    case(
        "matrix://:token@matrix.example.com?room=testroom",
        MATRIX,  # a bare alias gets '#' (and the homeserver)
        "https://matrix.example.com/_matrix/client/v3/directory/room/%23testroom%3Amatrix.example.com",
        method="GET",
        id="matrix-bare-alias",
    ),
    case(
        "matrix://:token@matrix.example.com?disableTLS=true&rooms=!a:matrix.example.com",
        MATRIX,
        "http://matrix.example.com/_matrix/client/v3/rooms/%21a%3Amatrix.example.com/send/"
        "m.room.message/eventbus.dlv_1.0",
        method="PUT",
        id="matrix-disabletls",
    ),
    # -- mattermost: mattermost://[user@]host[:port]/token[/channel]
    case(
        "mattermost://mattermost.my-domain.com/thisshouldbeanapitoken",
        MATTERMOST,
        "https://mattermost.my-domain.com/hooks/thisshouldbeanapitoken",
        id="mattermost",
    ),
    case(
        "mattermost://testUserName@mattermost.my-domain.com/thisshouldbeanapitoken/testChannel",
        MATTERMOST,
        "https://mattermost.my-domain.com/hooks/thisshouldbeanapitoken",
        json={"username": "testUserName", "channel": "testChannel"},
        id="mattermost-user-channel",
    ),
    case(
        "mattermost://watchtower@home.lan:8065/token/channel?disabletls=Yes&icon_url=https://x.io/i.png",
        MATTERMOST,  # icon_url is an alias of icon (mattermost_config.go)
        "http://home.lan:8065/hooks/token",
        json={"icon_url": "https://x.io/i.png"},
        id="mattermost-port-disabletls",
    ),
    # -- googlechat: the webhook URL with its scheme replaced
    case(
        "googlechat://chat.googleapis.com/v1/spaces/FOO/messages?key=bar&token=baz",
        "pkg/services/chat/googlechat/googlechat_test.go",
        "https://chat.googleapis.com/v1/spaces/FOO/messages?key=bar&token=baz",
        id="googlechat",
    ),
    # -- teams: the workflow URL, percent-encoded, in host=
    case(f"teams://?host={quote(WORKFLOW, safe='')}", TEAMS, WORKFLOW, id="teams-workflow"),
    case(
        f"teams://?host={quote(WORKFLOW, safe='')}&title=Alert&color=Red",
        "docs/services/chat/teams/index.md",  # red is Adaptive Card's "attention"
        WORKFLOW,
        id="teams-title-color",
    ),
    case(
        f"teams://?host={quote(WORKFLOW, safe='')}&color=%23ff0000",
        "pkg/services/chat/teams/teams_service.go",  # colorToEnum: anything else is default
        WORKFLOW,
        warns=("not an Adaptive Card colour",),
        id="teams-unknown-color-warns",
    ),
    case(
        "teams://?host=" + quote("https://example.com/webhook", safe=""),
        TEAMS,  # ValidateWebhookURL refuses it at send time: eventbus warns
        "https://example.com/webhook",
        warns=("not on a Power Automate host",),
        id="teams-other-host-warns",
    ),
]


@pytest.mark.parametrize("item", ACCEPTED)
def test_shoutrrr_url_makes_the_same_request(item: Case) -> None:
    check(item)


def test_teams_colour_names_become_adaptive_card_colours() -> None:
    # pkg/services/chat/teams/teams_service.go: colorToEnum
    card = first_request(made(f"teams://?host={quote(WORKFLOW, safe='')}&title=Alert&color=Red"))
    assert card.json is not None and '"color": "attention"' in json.dumps(card.json)


@pytest.mark.parametrize(
    "url",
    [
        "https://prod-00.westus.logic.azure.com/workflows/abc123/triggers/manual/paths/invoke",
        "https://prod-00.westus.logic.azure.us/workflows/abc123/triggers/manual/paths/invoke",
        "https://default.environment.api.powerplatform.com/powerautomate/automations/direct/"
        "workflows/abc123/triggers/manual/paths/invoke?api-version=1&sig=XXXXXXXX",
        "https://prod-00.westus.logic.azure.com/powerautomate/automations/direct/cu/04/"
        "workflows/abc123/triggers/manual/paths/invoke",
    ],
)
def test_teams_workflow_hosts_shoutrrr_validates_do_not_warn(url: str) -> None:
    # pkg/services/chat/teams/teams_test.go: "should accept valid Power Automate workflow URLs"
    from consumers.channels.urls import parse_url

    teams = f"teams://?host={quote(url, safe='')}"
    assert made(teams).type == "teams"
    assert parse_url(teams).warnings() == []


REFUSED = [
    # (url, source, what the error says)
    pytest.param("discord://@123456789", DISCORD_CONFIG, "token", id="discord-no-token"),
    pytest.param("discord://token@", DISCORD_CONFIG, "webhook id", id="discord-no-id"),
    pytest.param(
        "discord://:token@123456789",
        "pkg/services/chat/discord/discord_config.go",  # Token `url:"user"`
        "token",
        id="discord-token-as-password",
    ),
    pytest.param("discord://token@123456789/invalid", DISCORD_CONFIG, "path", id="discord-path"),
    pytest.param(
        "discord://token@123456789?invalid_key=value", DISCORD_CONFIG, "unknown", id="discord-key"
    ),
    pytest.param(
        "slack://lol@12345678/123456789/123456789123456789123456", SLACK, "malformed", id="slack-p1"
    ),
    pytest.param(
        "slack://lol@123456789/12345678/123456789123456789123456", SLACK, "malformed", id="slack-p2"
    ),
    pytest.param(
        "slack://123456789/123456789/12345678912345678912345", SLACK, "malformed", id="slack-p3"
    ),
    pytest.param(
        "slack://lol@/123456789/123456789123456789123456", SLACK, "malformed", id="slack-missing"
    ),
    pytest.param("slack://lol@123456789//123456789", SLACK, "malformed", id="slack-empty-part"),
    pytest.param(
        f"slack://hook:{SLACK_HOOK}@webhook?bass=dirty", SLACK, "unknown", id="slack-unknown-key"
    ),
    pytest.param("slack://AAAAAAAA", SLACK, "malformed", id="slack-no-token"),
    pytest.param(
        "slack://hook:AAAAAAAAA-BBBBBBBBB/123456789123456789123456@webhook",
        "pkg/services/chat/slack/slack_token.go",  # ErrMismatchedTokenSeparators
        "'@' after a '/'",
        id="slack-mixed-separators",
    ),
    pytest.param("telegram://invalid-token", TELEGRAM_TEST, "token", id="telegram-bad-token"),
    pytest.param(
        "telegram://12345:mock-token@telegram", TELEGRAM_TEST, "no chat", id="telegram-no-chats"
    ),
    pytest.param(
        "telegram://12345:mock-token@telegram/?chats=-1&foo=bar",
        TELEGRAM_TEST,
        "unknown",
        id="telegram-unknown-key",
    ),
    pytest.param("matrix://testuser:testpass@", MATRIX, "no homeserver", id="matrix-no-host"),
    pytest.param(
        "matrix://testuser@matrix.example.com?rooms=!a:b", MATRIX, "credentials", id="matrix-no-pw"
    ),
    pytest.param("mattermost://mattermost.my-domain.com", MATTERMOST, "token", id="mm-no-token"),
    pytest.param(
        "googlechat://chat.googleapis.com/v1/spaces/FOO/messages?key=&token=baz",
        "pkg/services/chat/googlechat/googlechat_test.go",
        "key=",
        id="googlechat-no-key",
    ),
    pytest.param(
        "googlechat://chat.googleapis.com/v1/spaces/FOO/messages?key=bar&token=",
        "pkg/services/chat/googlechat/googlechat_test.go",
        "token=",
        id="googlechat-no-token",
    ),
    pytest.param("teams://?host=", TEAMS, "no workflow URL", id="teams-empty-host"),
]


@pytest.mark.parametrize(("url", "source", "needle"), REFUSED)
def test_shoutrrr_refusals(url: str, source: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        made(url)


STRICTER = [
    # shoutrrr accepts these; each would fail at the provider, so eventbus says so at once
    pytest.param(
        "telegram://12345:mock-token@telegram/?chats=channel-1",
        TELEGRAM_TEST,
        "not valid",  # Telegram takes numeric ids and @usernames only
        id="telegram-chat-name",
    ),
    pytest.param(
        "matrix://testuser:testpass@matrix.example.com",
        MATRIX,
        "names no room",  # shoutrrr would post to every joined room
        id="matrix-no-rooms",
    ),
    pytest.param(
        "discord://token@webhook",
        DISCORD_SERVICE,
        "not numeric",  # webhook ids are numbers
        id="discord-word-id",
    ),
]


@pytest.mark.parametrize(("url", "source", "needle"), STRICTER)
def test_stricter_than_shoutrrr_where_the_provider_would_refuse(
    url: str, source: str, needle: str
) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        made(url)
