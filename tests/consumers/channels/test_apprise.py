"""Apprise URLs of the common services are read as the shoutrrr URL they mean.

Every case names the file of caronc/apprise its URL (or its layout) comes
from: the plugin's ``templates`` or the plugin's test module.
"""

from __future__ import annotations

import contextlib

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.channels._apprise import APPRISE_SCHEMES
from consumers.channels.urls import parse_url
from eventbus.errors import ChannelConfigError

from .parity import Case, case, check, made
from .support import build

HOOK_TOKEN = "B" * 68  # Discord webhook tokens are 68 characters
SLACK_HOOK_URL = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
SLACK_BOT = "xoxb-123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N"
PUSHOVER_USER = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
PUSHOVER_TOKEN = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
TELEGRAM = "https://api.telegram.org/bot123456789:abcdefg_hijklmnop/sendMessage"

ACCEPTED = [
    case(
        "tgram://123456789:abcdefg_hijklmnop/12345/67890:55/",
        "tests/test_plugin_telegram.py",
        TELEGRAM,
        json={"chat_id": 12345},
        id="tgram",
    ),
    case(
        "tgram://123456789:abcdefg_hijklmnop/?format=html&to=-1001",
        "tests/test_plugin_telegram.py",  # format=html; to= names the chats
        TELEGRAM,
        json={"chat_id": -1001, "parse_mode": "HTML"},
        id="tgram-format",
    ),
    case(
        f"discord://l2g@123456789012345678/{HOOK_TOKEN}/",
        "tests/test_plugin_discord.py",  # discord://{botname}@{webhook_id}/{webhook_token}
        f"https://discord.com/api/webhooks/123456789012345678/{HOOK_TOKEN}?wait=true",
        json={"username": "l2g"},
        id="discord-apprise",
    ),
    case(
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/",
        "tests/test_plugin_slack.py",  # the same layout as shoutrrr's legacy form
        SLACK_HOOK_URL,
        id="slack-tokens-abc",
    ),
    case(
        "slack://bot@T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
        "apprise/plugins/slack.py",  # {schema}://{botname}@{token_a}/{token_b}/{token_c}
        SLACK_HOOK_URL,
        json={"username": "bot"},
        id="slack-botname-abc",
    ),
    case(
        f"slack://{SLACK_BOT}/#nuxref",
        "apprise/plugins/slack.py",  # {schema}://{access_token}/{targets}
        "https://slack.com/api/chat.postMessage",
        json={"channel": "nuxref"},
        id="slack-bot-token",
    ),
    case(
        "ntfy://topic1",
        "apprise/plugins/ntfy.py",  # {schema}://{topic}: a topic on ntfy.sh
        "https://ntfy.sh/topic1",
        id="ntfy-topic-only",
    ),
    case(
        "ntfys://localhost/topic1?priority=high&tags=a,b",
        "tests/test_plugin_ntfy.py",
        "https://localhost/topic1",
        headers={"Priority": "4", "Tags": "a,b"},
        id="ntfys",
    ),
    case(
        "ntfys://tk_abcd123456@localhost/topic1",
        "apprise/plugins/ntfy.py",  # {schema}://{token}@{host}/{targets}
        "https://localhost/topic1",
        headers={"Authorization": "Bearer tk_abcd123456"},
        id="ntfys-token",
    ),
    case(
        "gotifys://hostname/a/path/AJFh0x8Y3l6fEc2",
        "tests/test_plugin_gotify.py",  # {schema}://{host}{path}{token}
        "https://hostname/a/path/message",
        id="gotifys",
    ),
    case(
        f"pover://{PUSHOVER_USER}@{PUSHOVER_TOKEN}/DEVICE?priority=1",
        "tests/test_plugin_pushover.py",  # {schema}://{user_key}@{token}/{targets}
        "https://api.pushover.net/1/messages.json",
        form={"user": PUSHOVER_USER, "token": PUSHOVER_TOKEN, "device": "DEVICE"},
        id="pover",
    ),
    case(
        "matrixs://user:pass@localhost:1234/#room",
        "tests/test_plugin_matrix.py",
        "https://localhost:1234/_matrix/client/v3/login",
        json={"password": "pass"},
        id="matrixs-login",
    ),
    case(
        "matrix://token@localhost/!room1:localhost",
        "apprise/plugins/matrix/base.py",  # {schema}://{token}@{host}/{targets}; matrix:// is http
        "http://localhost/_matrix/client/v3/rooms/%21room1%3Alocalhost/send/m.room.message/"
        "eventbus.dlv_1.0",
        method="PUT",
        headers={"Authorization": "Bearer token"},
        id="matrix-token-http",
    ),
    case(
        "mmost://localhost/3ccdd113474722377935511fc85d3dd4?to=test",
        "tests/test_plugin_mattermost.py",  # mmost:// is http
        "http://localhost/hooks/3ccdd113474722377935511fc85d3dd4",
        json={"channel": "test"},
        id="mmost",
    ),
    case(
        "mmosts://bot@mm.example.com:8065/token",
        "apprise/plugins/mattermost.py",  # {schema}://{user}@{host}:{port}/{token}
        "https://mm.example.com:8065/hooks/token",
        json={"username": "bot"},
        id="mmosts",
    ),
    case(
        "workflow://prod-00.westus.logic.azure.com:443/workflow1a/signature/",
        "tests/test_plugin_workflows.py",
        "https://prod-00.westus.logic.azure.com:443/workflows/workflow1a/triggers/manual/paths/"
        "invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=signature",
        id="workflow",
    ),
    case(
        "workflows://prod.environment.api.powerplatform.com/abc/sig?pa=yes&route=4",
        "apprise/plugins/workflows.py",  # pa=yes: the Power Automate path, with its route
        "https://prod.environment.api.powerplatform.com/powerautomate/automations/direct/cu/4/"
        "workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01"
        "&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=sig",
        id="workflows-power-automate",
    ),
]


@pytest.mark.parametrize("item", ACCEPTED)
def test_apprise_url_makes_the_request_it_means(item: Case) -> None:
    check(item)
    # slack://A/B/C is shoutrrr's legacy layout too: no translation needed
    same_layout = item.url.startswith("slack://") and "xox" not in item.url
    assert parse_url(item.url).apprise == ("" if same_layout else item.url.split(":", 1)[0])


@pytest.mark.parametrize(
    ("url", "server", "sender", "recipients", "encryption"),
    [
        pytest.param(
            "mailto://localhost?from=test@example.com&to=test@example.com",
            "smtp://localhost:25",
            "test@example.com",
            "test@example.com",
            "none",
            id="mailto",  # tests/test_plugin_email.py
        ),
        pytest.param(
            "mailtos://user:pass@example.com",
            "smtp://example.com:587",
            "user@example.com",  # the user at the host, and to themselves
            "user@example.com",
            "starttls",
            id="mailtos",  # apprise/plugins/email/base.py: {schema}://{user}:{password}@{host}
        ),
        pytest.param(
            "mailtos://_:pass@l2g.com?user=user@test.com&smtp=smtp.l2g.com&mode=ssl&name=Ops",
            "smtp://smtp.l2g.com:465",
            "Ops <user@test.com>",
            "user@test.com",
            "tls",
            id="mailtos-smtp-ssl",  # tests/test_plugin_email.py
        ),
        pytest.param(
            "mailtos://chris:pass@nuxref.com/user@example.com",
            "smtp://nuxref.com:587",
            "chris@nuxref.com",
            "user@example.com",
            "starttls",
            id="mailtos-target",  # tests/test_plugin_email.py
        ),
    ],
)
def test_apprise_mail_urls(
    url: str, server: str, sender: str, recipients: str, encryption: str
) -> None:
    from .parity import first_request

    channel = made(url)
    request = first_request(channel)
    assert str(request.url) == server
    assert request.headers["From"] == sender
    assert request.headers["To"] == recipients
    assert getattr(channel, "encryption") == encryption  # noqa: B009


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param(
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#channel",
            "posts to its own channel",
            id="slack-webhook-channel",  # tests/test_plugin_slack.py
        ),
        pytest.param(f"slack://{SLACK_BOT}/#a/#b", "one URL per channel", id="slack-many-channels"),
        pytest.param("ntfys://localhost/a/b", "one URL per topic", id="ntfy-many-topics"),
        pytest.param(
            "mmost://localhost/token?mode=bot", "no eventbus equivalent", id="mmost-bot-mode"
        ),  # tests/test_plugin_mattermost.py
        pytest.param("matrixs://localhost/#room", "t2bot", id="matrix-no-credentials"),
        pytest.param("workflow://host/workflow", "WORKFLOW_ID/SIGNATURE", id="workflow-no-sig"),
        pytest.param("mailto://localhost", "needs a sender", id="mailto-no-sender"),
        pytest.param(
            "msteams://team/tokenA/tokenB/tokenC", "retired", id="msteams-connector"
        ),  # Apprise's former apprise/plugins/msteams.py layout
        pytest.param("pover://tokenonly", "USER_KEY@API_TOKEN", id="pover-no-user"),
        pytest.param(
            "tgram://123456789:abcdefg_hijklmnop/1?silent=maybe&footer=no",
            "'footer'",
            id="tgram-unknown-option",
        ),
    ],
)
def test_apprise_forms_without_an_equivalent_are_refused(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        made(url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("discord://token@123456789", id="discord"),
        pytest.param("discord://token@123456789/invalid", id="discord-short-path"),
        pytest.param("ntfy://ntfy.example.com/mytopic", id="ntfy"),
        pytest.param("matrix://:token@host/?rooms=!a:host", id="matrix"),
        pytest.param("slack://AAAAAAAAA/BBBBBBBBB/123456789123456789123456", id="slack-legacy"),
        pytest.param("gotify://my.gotify.tld/Aaa.bbb.ccc.ddd", id="gotify"),
    ],
)
def test_shoutrrr_layouts_of_shared_schemes_stay_shoutrrr(url: str) -> None:
    # the schemes both projects use are Apprise's only in Apprise's layout
    try:
        parsed = parse_url(url)
    except ChannelConfigError:  # pragma: no cover - every URL here parses
        raise
    assert parsed.apprise == ""


APPRISE_TAIL = st.text(alphabet="ab1:/@#?&=%.-_ xoxb", max_size=60)
# one client for every example: building channels makes no request
CLIENT = httpx.AsyncClient()


@settings(deadline=None, max_examples=60)
@given(APPRISE_TAIL)
def test_any_apprise_url_parses_or_says_why(tail: str) -> None:
    # whatever follows an Apprise (or shared) scheme, the only failure is a config error
    for scheme in (*APPRISE_SCHEMES, "discord", "slack", "ntfy", "matrix"):
        with contextlib.suppress(ChannelConfigError):
            build(CLIENT, f"{scheme}://{tail}")
