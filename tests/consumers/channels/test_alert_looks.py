"""Every channel shows an alert's raise and resolve in the request it sends.

The text: a raise is the event's notification with the alert key, a resolve
is titled ``RESOLVED: <summary>`` and says how long the alert was open and
how many events it folded in. The look: green and quiet for a resolve where
the service has colours or priorities, whatever the channel's fixed option.
The webhook posts the alert document. PagerDuty and Opsgenie are in
test_incident_alerts.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus

import httpx
import pytest
from structlog.testing import capture_logs

from consumers.channels.base import ChannelDeps
from consumers.channels.console import ConsoleChannel
from consumers.channels.registry import create_channel
from consumers.channels.smtp import SmtpChannel
from consumers.channels.webhook import decode_secret, sign
from eventbus.settings import ChannelSpec

from .support import Recorder, alert_message, build, mock_client, spec
from .test_user_agent import SAMPLES, ok

RESOLVED = "RESOLVED: capsule.create failed: capsule c1 (team-1)"
OPEN_FOR = "Open for 3h5m; 41 events folded in"
WORKFLOW = "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=SIGsecret123"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# their own tests: test_incident_alerts.py (PagerDuty, Opsgenie), below (webhook)
OWN_SHAPE = {"webhook", "pagerduty", "opsgenie"}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _text(request: httpx.Request) -> str:
    """Everything a request says, decoded: URL, headers, JSON strings or form values."""
    parts = [unquote_plus(str(request.url)), *request.headers.values()]
    content = request.content.decode("utf-8", "replace")
    try:
        parts += _strings(json.loads(content))
    except ValueError:
        parts += [value for _, value in parse_qsl(content)] or [content]
    return "\n".join(parts)


async def _sent(definition: dict[str, Any], transition: str) -> str:
    recorder = Recorder(ok)
    async with mock_client(recorder) as client:
        channel = create_channel(
            ChannelSpec(name="ch", **definition), ChannelDeps(http=client, timeout=5)
        )
        result = await channel.send(alert_message(transition))
    assert result.ok, result.error
    return "\n".join(_text(request) for request in recorder.requests)


@pytest.mark.parametrize("kind", sorted(set(SAMPLES) - OWN_SHAPE))
async def test_each_channel_says_raise_and_resolve(kind: str) -> None:
    raised = await _sent(SAMPLES[kind], "raised")
    assert "capsule.create failed: capsule c1 (team-1)" in raised
    assert "Alert: backup-failed:h1" in raised
    assert "RESOLVED" not in raised
    resolved = await _sent(SAMPLES[kind], "resolved")
    assert RESOLVED in resolved
    assert OPEN_FOR in resolved


def _teams(recorder: Recorder) -> tuple[str, str]:
    block = recorder.json()["attachments"][0]["content"]["body"][0]
    return block["text"], block["color"]


def _form(recorder: Recorder) -> str:
    return dict(parse_qsl(recorder.last.content.decode()))["priority"]


Read = Callable[[Recorder], Any]
# (url, what carries the look, raise of an error alert, resolve)
LOOKS = [
    pytest.param(
        "discord://Abc-DEF_ghi123456789jkl@9",
        lambda recorder: recorder.json()["embeds"][0]["color"],
        0xE74C3C,
        0x2ECC71,
        id="discord-colour",
    ),
    pytest.param(
        "slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook",
        lambda recorder: recorder.json()["attachments"][0]["color"],
        "#E74C3C",
        "#2ECC71",
        id="slack-colour",
    ),
    pytest.param(
        "mattermost://mm.example.com/hooktoken123",
        lambda recorder: recorder.json()["attachments"][0]["color"],
        "#E74C3C",
        "#2ECC71",
        id="mattermost-colour",
    ),
    pytest.param(
        f"teams://?host={quote(WORKFLOW, safe='')}",
        _teams,
        ("capsule.create failed: capsule c1 (team-1)", "Attention"),
        (RESOLVED, "Good"),
        id="teams-title-colour",
    ),
    pytest.param(
        "ntfy://ntfy.sh/alerts",
        lambda recorder: (recorder.last.headers["priority"], recorder.last.headers["tags"]),
        ("4", "rotating_light"),
        ("2", "white_check_mark"),
        id="ntfy-priority",
    ),
    pytest.param(
        "pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/",
        _form,
        "1",
        "-1",
        id="pushover-priority",
    ),
    pytest.param(
        "gotify://h/AJFh0x8Y3l6fEc2",
        lambda recorder: recorder.json()["priority"],
        8,
        2,
        id="gotify-priority",
    ),
]


async def _recorded(url: str, transition: str, **extra: Any) -> Recorder:
    recorder = Recorder(ok)
    async with mock_client(recorder) as client:
        result = await build(client, url).send(alert_message(transition, **extra))
    assert result.ok, result.error
    return recorder


@pytest.mark.parametrize(("url", "read", "raised", "resolved"), LOOKS)
async def test_resolve_looks_green_and_quiet(
    url: str, read: Read, raised: Any, resolved: Any
) -> None:
    assert read(await _recorded(url, "raised")) == raised
    assert read(await _recorded(url, "resolved")) == resolved


@pytest.mark.parametrize(
    ("url", "read", "fixed", "resolved"),
    [
        pytest.param(
            "discord://Abc-DEF_ghi123456789jkl@9?color=0x123456",
            lambda recorder: recorder.json()["embeds"][0]["color"],
            0x123456,
            0x2ECC71,
            id="discord",
        ),
        pytest.param(
            "pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/?priority=2",
            _form,
            "2",
            "-1",
            id="pushover-emergency",
        ),
        pytest.param(
            "ntfy://ntfy.sh/alerts?priority=max",
            lambda recorder: recorder.last.headers["priority"],
            "5",
            "2",
            id="ntfy",
        ),
    ],
)
async def test_a_fixed_option_keeps_the_raise_but_not_the_resolve(
    url: str, read: Read, fixed: Any, resolved: Any
) -> None:
    assert read(await _recorded(url, "raised")) == fixed
    assert read(await _recorded(url, "resolved")) == resolved


async def test_acknowledge_and_repeat_notices() -> None:
    url = "discord://Abc-DEF_ghi123456789jkl@9"
    acked = (await _recorded(url, "acknowledged")).json()["embeds"][0]
    assert acked["title"] == "ACKNOWLEDGED by ana: capsule.create failed: capsule c1 (team-1)"
    assert acked["color"] == 0x95A5A6
    repeat = (await _recorded(url, "repeat", severity="critical")).json()["embeds"][0]
    assert repeat["title"] == (
        "STILL FIRING (3h, 41 events): capsule.create failed: capsule c1 (team-1)"
    )
    assert repeat["color"] == 0x992D22  # the alert's highest severity


async def test_a_resolve_has_no_severity_tag() -> None:
    url = "telegram://123456:ABC-telegram-token_0123@telegram?chats=-100123"
    recorder = await _recorded(url, "resolved", outcome="success")
    assert recorder.json()["text"].startswith(f"<b>{RESOLVED}</b>")


async def test_webhook_posts_the_signed_alert_document() -> None:
    recorder = Recorder(lambda request: httpx.Response(204))
    async with mock_client(recorder) as client:
        channel = build(client, "https://hooks.example.com/in", type="webhook", secret=SECRET)
        result = await channel.send(alert_message("resolved"))
    assert result.ok, result.error
    request = recorder.last
    document = json.loads(request.content)
    assert document["event"]["id"] == "01HZX0000000000000000000AA"
    assert document["event"]["outcome"] == "success"
    del document["event"]
    assert document == {
        "type": "eventbus.alert",
        "transition": "resolved",
        "alert": {
            "id": "01HZXALERT0000000000000001",
            "team_id": "team-1",
            "key": "backup-failed:h1",
            "dedup_key": "team-1:backup-failed:h1",
            "transition": "resolved",
            "status": "resolved",
            "severity": "error",
            "first_seen": "2024-05-01T09:00:00.000Z",
            "last_seen": "2024-05-01T12:00:00.000Z",
            "count": 41,
            "summary": "capsule.create failed: capsule c1 (team-1)",
            "open_for": 11100.0,
            "acknowledged_by": None,
            "resolved_at": "2024-05-01T12:05:00.000Z",
            "reason": None,
        },
    }
    # Standard Webhooks signing is unchanged: over the document actually sent
    timestamp = int(request.headers["webhook-timestamp"])
    expected = sign(decode_secret(SECRET), "dlv_alert_1", timestamp, request.content)
    assert request.headers["webhook-signature"] == expected
    assert request.headers["webhook-id"] == "dlv_alert_1"


async def test_console_and_email_say_resolved() -> None:
    with capture_logs() as logs:
        assert (
            await ConsoleChannel("demo", stream=io.StringIO()).send(alert_message("resolved"))
        ).ok
    [line] = [entry for entry in logs if entry["event"] == "notification"]
    assert (line["title"], line["body"].split("\n")[0]) == (RESOLVED, OPEN_FOR)
    url = "smtp://mail.example.com:587/?from=a@x.io&to=b@x.io"
    mail = create_channel(spec(url), ChannelDeps(http=httpx.AsyncClient()))
    assert isinstance(mail, SmtpChannel)
    built: EmailMessage = mail.build(alert_message("resolved"))
    assert built["Subject"] == RESOLVED
    assert OPEN_FOR in built.get_content()
