"""``eventbus urls generate``: URLs built from parts read back exactly, for every service."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result

from consumers.channels.urls import parse_url
from consumers.cli.generate import SERVICES, build_url, read_parts
from eventbus.cli import cli

# What breaks hand-written URLs: every character with a meaning in a URL.
NASTY = "a#b@c/d:e%f g?h&i=j+k,l"
NASTY_NO_COMMA = NASTY.replace(",", "")


def parse_fields(url: str) -> dict[str, Any]:
    parsed = parse_url(url)
    return {
        "scheme": parsed.scheme + (f"+{parsed.subscheme}" if parsed.subscheme else ""),
        "user": parsed.user,
        "password": parsed.password,
        "host": parsed.host,
        "port": parsed.port,
        "path": parsed.path,
        "query": parsed.query,
    }


# (service, parts given, what parse_url must give back)
ROUND_TRIPS = [
    pytest.param(
        "telegram",
        {"token": "123456:AB#C@D/E:F", "chats": "@ops,-100123:42"},
        {
            "user": "123456",
            "password": "AB#C@D/E:F",
            "host": "telegram",
            "query": {"chats": "@ops,-100123:42"},
        },
        id="telegram",
    ),
    pytest.param(
        "discord",
        {"token": NASTY, "webhook_id": "123456789012345678"},
        {"user": NASTY, "password": None, "host": "123456789012345678"},
        id="discord",
    ),
    pytest.param(
        "slack",
        {"token": "T0#1-B@2/3-x:y"},
        {"user": "hook", "password": "T0#1-B@2/3-x:y", "host": "webhook"},
        id="slack-webhook",
    ),
    pytest.param(
        "slack-bot",
        {"token": "xoxb-12#3-4@5/6:7", "channel": "#general"},
        {"user": "xoxb", "password": "12#3-4@5/6:7", "host": "#general"},
        id="slack-bot",
    ),
    pytest.param(
        "smtp",
        {
            "username": "me@x.io",
            "password": NASTY,
            "host": "mail.example.com",
            "port": "587",
            "from": "ops@example.com",
            "to": "a@x.io,b@x.io",
        },
        {
            "user": "me@x.io",
            "password": NASTY,
            "host": "mail.example.com",
            "port": 587,
            "query": {"fromaddress": "ops@example.com", "toaddresses": "a@x.io,b@x.io"},
        },
        id="smtp",
    ),
    pytest.param(
        "ntfy",
        {"token": NASTY, "host": "ntfy.sh", "topic": "al#e/r:ts"},
        {"user": "", "password": NASTY, "host": "ntfy.sh", "path": ("al#e/r:ts",)},
        id="ntfy",
    ),
    pytest.param(
        "gotify",
        {"host": "gotify.example.com", "token": NASTY},
        {"host": "gotify.example.com", "path": (NASTY,)},
        id="gotify",
    ),
    pytest.param(
        "pushover",
        {"token": NASTY, "user_key": "u#k@y/1:2"},
        {"user": "shoutrrr", "password": NASTY, "host": "u#k@y/1:2"},
        id="pushover",
    ),
    pytest.param(
        "matrix",
        {
            "user": "@bot:example.org",
            "password": NASTY,
            "host": "matrix.example.org",
            "rooms": "!abc:example.org,#ops:example.org",
        },
        {
            "user": "@bot:example.org",
            "password": NASTY,
            "host": "matrix.example.org",
            "query": {"rooms": "!abc:example.org,#ops:example.org"},
        },
        id="matrix",
    ),
    pytest.param(
        "mattermost",
        {"username": "bot", "host": "mm.example.com", "token": NASTY, "channel": "town#square"},
        {"user": "bot", "host": "mm.example.com", "path": (NASTY, "town#square")},
        id="mattermost",
    ),
    pytest.param(
        "googlechat",
        {"space": "AAAA#1", "key": NASTY_NO_COMMA, "token": "t#k/n:1@2"},
        {
            "host": "chat.googleapis.com",
            "path": ("v1", "spaces", "AAAA#1", "messages"),
            "query": {"key": NASTY_NO_COMMA, "token": "t#k/n:1@2"},
        },
        id="googlechat",
    ),
    pytest.param(
        "teams",
        {
            "workflow_url": "https://x.logic.azure.com:443/workflows/1/invoke?api-version=1&sig=a%2Fb#c"
        },
        {
            "host": "",
            "query": {
                "host": "https://x.logic.azure.com:443/workflows/1/invoke?api-version=1&sig=a%2Fb#c"
            },
        },
        id="teams",
    ),
    pytest.param(
        "generic",
        {
            "scheme": "http",
            "username": "u:1",
            "password": NASTY,
            "host": "hooks.example.com",
            "port": "8443",
            "path": "api/v1/hook",
            "template": "json",
        },
        {
            "scheme": "generic+http",
            "user": "u:1",
            "password": NASTY,
            "host": "hooks.example.com",
            "port": 8443,
            "path": ("api", "v1", "hook"),
            "query": {"template": "json"},
        },
        id="generic",
    ),
    pytest.param(
        "bark",
        {"device_key": NASTY, "host": "bark.example.com", "port": "8080", "path": "b/a"},
        {"user": "", "password": NASTY, "host": "bark.example.com", "port": 8080},
        id="bark",
    ),
    pytest.param(
        "ifttt",
        {"key": "k#y/1", "events": "deploy,alert"},
        {"host": "k#y/1", "query": {"events": "deploy,alert"}},
        id="ifttt",
    ),
    pytest.param(
        "join",
        {"api_key": NASTY, "devices": "d1,d2"},
        {"user": "shoutrrr", "password": NASTY, "host": "join", "query": {"devices": "d1,d2"}},
        id="join",
    ),
    pytest.param(
        "lark",
        {"host": "open.feishu.cn", "token": "t#k/1", "secret": NASTY},
        {"host": "open.feishu.cn", "path": ("t#k/1",), "query": {"secret": NASTY}},
        id="lark",
    ),
    pytest.param(
        "pushbullet",
        {"token": "o.abcdefghijklmnopqrstuvwxyz012345", "target": "#chan"},
        {"host": "o.abcdefghijklmnopqrstuvwxyz012345", "path": ("#chan",)},
        id="pushbullet",
    ),
    pytest.param(
        "rocketchat",
        {
            "sender": "bot@x",
            "host": "chat.example.com",
            "port": "3000",
            "token_a": "A#1",
            "token_b": "B/2",
            "channel": "@alice",
        },
        {"user": "bot@x", "host": "chat.example.com", "path": ("A#1", "B/2", "@alice")},
        id="rocketchat",
    ),
    pytest.param(
        "signal",
        {
            "user": "u",
            "password": NASTY,
            "host": "signal.example.com",
            "port": "8080",
            "source": "+15551234567",
            "recipients": "+15557654321/group.ABC/D+E=",
            "token": NASTY,
        },
        {
            "password": NASTY,
            "port": 8080,
            "path": ("+15551234567", "+15557654321", "group.ABC", "D+E="),
            "query": {"token": NASTY},
        },
        id="signal",
    ),
    pytest.param(
        "wecom",
        {"key": "693axxx6-7aoc", "mentioned_list": "@all,bob"},
        {"host": "693axxx6-7aoc", "query": {"mentioned_list": "@all,bob"}},
        id="wecom",
    ),
    pytest.param(
        "zulip",
        {
            "bot_email": "bot@example.com",
            "api_key": NASTY,
            "host": "z.example.com",
            "stream": "ops & alerts",
            "topic": NASTY,
        },
        {
            "user": "bot@example.com",
            "password": NASTY,
            "query": {"stream": "ops & alerts", "topic": NASTY},
        },
        id="zulip",
    ),
    pytest.param(
        "pagerduty",
        {
            "host": "",
            "integration_key": "eb243592faa24ba2a5511afdf565c889",
            "severity": "critical",
            "source": "db 1",
        },
        {
            "host": "",
            "path": ("eb243592faa24ba2a5511afdf565c889",),
            "query": {"severity": "critical", "source": "db 1"},
        },
        id="pagerduty",
    ),
    pytest.param(
        "opsgenie",
        {"host": "api.eu.opsgenie.com", "api_key": "k#1/2", "responders": "team:NOC,user:a@b.c"},
        {
            "host": "api.eu.opsgenie.com",
            "path": ("k#1/2",),
            "query": {"responders": "team:NOC,user:a@b.c"},
        },
        id="opsgenie",
    ),
]


def test_the_table_covers_every_service() -> None:
    assert {param.values[0] for param in ROUND_TRIPS} == set(SERVICES)


@pytest.mark.parametrize(("service", "given", "expected"), ROUND_TRIPS)
def test_generated_url_parses_back_to_the_parts_given(
    service: str, given: dict[str, str], expected: dict[str, Any]
) -> None:
    url = build_url(SERVICES[service], given)
    fields = parse_fields(url)
    assert fields["scheme"] == expected.pop("scheme", SERVICES[service].scheme)
    for name, value in expected.items():
        assert fields[name] == value, (name, url)
    assert read_parts(SERVICES[service], parse_url(url)) == given


def test_optional_parts_left_out() -> None:
    url = build_url(SERVICES["ntfy"], {"host": "ntfy.sh", "topic": "alerts"})
    assert url == "ntfy://ntfy.sh/alerts"
    url = build_url(SERVICES["mattermost"], {"host": "mm.example.com", "token": "abc"})
    assert url == "mattermost://mm.example.com/abc"


def generate(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["urls", "generate", *args], input=stdin)


# Realistic parts, so that the channel is built too (what urls verify does).
USABLE = {
    "telegram": ["token=123456789:AAEsecretTelegramPart0123", "chats=@opsteam"],
    "discord": ["token=tok#en", "webhook_id=123456789012345678"],
    "slack": ["token=T00000000-B00000000-XXXXXXXXXXXXXXXXXXXXXXXX"],
    "slack-bot": [
        "token=xoxb-123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N",
        "channel=C0123456789",
    ],
    "smtp": [
        "username=me",
        "password=p#ss:w/rd@",
        "host=mail.example.com",
        "port=587",
        "from=ops@example.com",
        "to=a@example.com,b@example.com",
    ],
    "ntfy": ["token=tk#1", "host=ntfy.sh", "topic=alerts"],
    "gotify": ["host=gotify.example.com", "token=AJFh0x8Y3l6fEc2"],
    "pushover": ["token=azGDORePK8gMaC0QOYAMyEEuzJnyUi", "user_key=uQiRzpo4DXghDmr9QzzfQu27cmVRsG"],
    "matrix": ["user=bot", "password=p#w@d", "host=matrix.example.org", "rooms=#ops:example.org"],
    "mattermost": ["host=mm.example.com", "token=abc123", "channel=", "username="],
    "googlechat": ["space=AAAA", "key=k/1", "token=t#2"],
    "teams": ["workflow_url=https://x.logic.azure.com/workflows/1/invoke?api-version=1&sig=s"],
    "generic": [
        "scheme=https",
        "username=",
        "password=",
        "host=example.com",
        "port=",
        "path=hook",
        "template=json",
    ],
    "bark": ["device_key=k#y", "host=api.day.app", "port=", "path="],
    "ifttt": ["key=iftttKEY", "events=deploy,alert"],
    "join": ["api_key=k#1", "devices=d1,d2"],
    "lark": ["host=open.larksuite.com", "token=tok1", "secret=s#1"],
    "pushbullet": ["token=o.abcdefghijklmnopqrstuvwxyz012345", "target=#chan"],
    "rocketchat": [
        "sender=bot",
        "host=chat.example.com",
        "port=",
        "token_a=A1",
        "token_b=B2",
        "channel=general",
    ],
    "signal": [
        "user=",
        "password=",
        "host=signal.example.com",
        "port=8080",
        "source=+15551234567",
        "recipients=+15557654321",
        "token=",
    ],
    "wecom": ["key=693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa", "mentioned_list="],
    "zulip": [
        "bot_email=bot@example.com",
        "api_key=k#y",
        "host=example.zulipchat.com",
        "stream=alerts",
        "topic=",
    ],
    "pagerduty": [
        "host=",
        "integration_key=eb243592faa24ba2a5511afdf565c889",
        "severity=",
        "source=",
    ],
    "opsgenie": ["host=api.eu.opsgenie.com", "api_key=eb243592-faa2", "responders=team:NOC"],
}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_generates_a_usable_url(service: str) -> None:
    result = generate(service, *(arg for item in USABLE[service] for arg in ("--set", item)))
    assert result.exit_code == 0, result.output
    [url] = result.stdout.splitlines()
    assert url.startswith(SERVICES[service].scheme)
    assert "✓ valid:" in result.stderr and "eventbus urls verify" in result.stderr
    verified = CliRunner().invoke(cli, ["urls", "verify", "--no-body", url])
    assert verified.exit_code == 0, verified.output


def test_prompts_for_each_part_and_hides_secrets() -> None:
    # smtp: username, password (hidden), host, port (default 587), from, to
    stdin = "me\np#ss/w:rd\nmail.example.com\n\nops@example.com\na@example.com\n"
    result = generate("smtp", stdin=stdin)
    assert result.exit_code == 0, result.output
    url = result.stdout.splitlines()[-1]
    assert url == (
        "smtp://me:p%23ss%2Fw%3Ard@mail.example.com:587"
        "?fromaddress=ops@example.com&toaddresses=a@example.com"
    )
    assert "SMTP password" in result.stdout or "SMTP password" in result.stderr
    assert "p#ss/w:rd" not in result.stderr  # typed hidden, never echoed


def test_set_skips_the_prompts_it_answers() -> None:
    result = generate("discord", "--set", "webhook_id=42", stdin="my#token\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "discord://my%23token@42"
    assert "Webhook id" not in result.output


def test_list_and_bare_list_the_services() -> None:
    for args in ([], ["--list"]):
        result = generate(*args)
        assert result.exit_code == 0
        listed = [line.split()[0] for line in result.stdout.splitlines()]
        assert listed == list(SERVICES)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["nosuch"], "unknown service 'nosuch'", id="unknown-service"),
        pytest.param(["discord", "--set", "tokn=x"], "'tokn' is not a part", id="unknown-part"),
        pytest.param(["discord", "--set", "token"], "is not a part", id="no-equals"),
        pytest.param(
            ["discord", "--set", "token=t", "--set", "webhook_id=abc"],
            "is not numeric",
            id="channel-refuses",
        ),
    ],
)
def test_bad_input_exits_2(args: list[str], says: str) -> None:
    result = generate(*args)
    assert result.exit_code == 2
    assert says in result.output
