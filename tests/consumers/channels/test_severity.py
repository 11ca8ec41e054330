"""Every channel shows an event's severity in the request it sends.

One table: each channel, what in its request carries the severity, and the
expected value for debug, info, warning, error and critical (in that order).
Then: a channel's own URL option wins over the severity, and an event
without a severity is shown by its effective level (``Event.level``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, quote

import httpx
import pytest
from structlog.testing import capture_logs

from consumers.channels.base import ChannelDeps
from consumers.channels.console import ConsoleChannel
from consumers.channels.registry import create_channel
from consumers.channels.smtp import SmtpChannel
from eventbus.envelope import Severity

from .support import Recorder, build, make_message, mock_client, spec

TITLE = "host.down: host h1 (ops)"
LEVELS = [level.value for level in Severity]
TAGGED = (TITLE, TITLE, f"[WARNING] {TITLE}", f"[ERROR] {TITLE}", f"[CRITICAL] {TITLE}")
WORKFLOW = "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=SIGsecret123"

Read = Callable[[Recorder], Any]


def _form(recorder: Recorder) -> dict[str, list[str]]:
    return parse_qs(recorder.last.content.decode())


def _teams_title(recorder: Recorder) -> tuple[str, str]:
    block = recorder.json()["attachments"][0]["content"]["body"][0]
    return block["text"], block["color"]


def _first_line(key: str) -> Read:
    return lambda recorder: recorder.json()[key].split("\n")[0]


CHANNELS = [
    pytest.param(
        "discord://Abc-DEF_ghi123456789jkl@9",
        lambda recorder: recorder.json()["embeds"][0]["color"],
        (0x95A5A6, 0x3498DB, 0xF39C12, 0xE74C3C, 0x992D22),
        id="discord-embed-colour",
    ),
    pytest.param(
        "ntfy://ntfy.sh/alerts",
        lambda recorder: (recorder.last.headers["priority"], recorder.last.headers["tags"]),
        (
            ("2", "mag"),
            ("3", "information_source"),
            ("4", "warning"),
            ("4", "rotating_light"),
            ("5", "sos"),
        ),
        id="ntfy-priority-and-tags",
    ),
    pytest.param(
        "pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/",
        lambda recorder: (_form(recorder)["priority"], "retry" in _form(recorder)),
        ((["-1"], False), (["0"], False), (["0"], False), (["1"], False), (["2"], True)),
        id="pushover-priority",
    ),
    pytest.param(
        "gotify://h/AJFh0x8Y3l6fEc2",
        lambda recorder: recorder.json()["priority"],
        (2, 4, 6, 8, 10),
        id="gotify-priority",
    ),
    pytest.param(
        "slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook",
        lambda recorder: recorder.json()["attachments"][0]["color"],
        ("#95A5A6", "#3498DB", "#F39C12", "#E74C3C", "#992D22"),
        id="slack-attachment-colour",
    ),
    pytest.param(
        "mattermost://mm.example.com/hooktoken123",
        lambda recorder: recorder.json()["attachments"][0]["color"],
        ("#95A5A6", "#3498DB", "#F39C12", "#E74C3C", "#992D22"),
        id="mattermost-attachment-colour",
    ),
    pytest.param(
        f"teams://?host={quote(WORKFLOW, safe='')}",
        _teams_title,
        tuple(zip(TAGGED, ("Default", "Accent", "Warning", "Attention", "Attention"), strict=True)),
        id="teams-title-tag-and-colour",
    ),
    pytest.param(
        "googlechat://chat.googleapis.com/v1/spaces/FOO/messages?key=KEYsecret1&token=TOKsecret2",
        _first_line("text"),
        tuple(f"*{title}*" for title in TAGGED),
        id="googlechat-title-tag",
    ),
    pytest.param(
        "matrix://:syt_token123@m.example/?rooms=!abc:m.example",
        _first_line("body"),
        TAGGED,
        id="matrix-title-tag",
    ),
    pytest.param(
        "telegram://123456:ABC-telegram-token_0123@telegram?chats=-100123",
        _first_line("text"),
        tuple(f"<b>{title}</b>" for title in TAGGED),
        id="telegram-title-tag",
    ),
    pytest.param(
        "generic+https://hooks.example.com/notify?template=json",
        lambda recorder: recorder.json()["title"],
        TAGGED,
        id="generic-title-tag",
    ),
]


async def _sent(url: str, severity: str | None, outcome: str | None = None) -> Recorder:
    recorder = Recorder(lambda request: httpx.Response(200, json={"ok": True, "event_id": "$e"}))
    message = make_message(title=TITLE, body="b", outcome=outcome, severity=severity)
    async with mock_client(recorder) as client:
        result = await build(client, url).send(message)
    assert result.ok, result.error
    return recorder


@pytest.mark.parametrize(("url", "read", "expected"), CHANNELS)
async def test_each_channel_shows_each_severity(url: str, read: Read, expected: Any) -> None:
    shown = [read(await _sent(url, level)) for level in LEVELS]
    assert dict(zip(LEVELS, shown, strict=True)) == dict(zip(LEVELS, expected, strict=True))


@pytest.mark.parametrize(
    ("url", "read", "fixed"),
    [
        pytest.param(
            "ntfy://ntfy.sh/alerts?priority=min&tags=robot",
            lambda recorder: (recorder.last.headers["priority"], recorder.last.headers["tags"]),
            ("1", "robot"),
            id="ntfy",
        ),
        pytest.param(
            "pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/?priority=-2",
            lambda recorder: _form(recorder)["priority"],
            ["-2"],
            id="pushover",
        ),
        pytest.param(
            "gotify://h/AJFh0x8Y3l6fEc2?priority=3",
            lambda recorder: recorder.json()["priority"],
            3,
            id="gotify",
        ),
        pytest.param(
            "discord://Abc-DEF_ghi123456789jkl@9?color=0x00FF00",
            lambda recorder: recorder.json()["embeds"][0]["color"],
            0x00FF00,
            id="discord",
        ),
        pytest.param(
            "slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook?color=good",
            lambda recorder: recorder.json()["attachments"][0]["color"],
            "good",
            id="slack",
        ),
        pytest.param(
            f"teams://?host={quote(WORKFLOW, safe='')}&color=Good",
            lambda recorder: _teams_title(recorder)[1],
            "Good",
            id="teams",
        ),
    ],
)
async def test_a_url_option_wins_over_the_severity(url: str, read: Read, fixed: Any) -> None:
    assert read(await _sent(url, "critical")) == fixed
    assert read(await _sent(url, "debug")) == fixed


@pytest.mark.parametrize(
    ("outcome", "colour", "ntfy"),
    [
        pytest.param("success", 0x2ECC71, ("3", "white_check_mark"), id="success-is-green-info"),
        pytest.param(None, 0x3498DB, ("3", "information_source"), id="no-outcome-is-blue-info"),
        pytest.param("error", 0xE74C3C, ("4", "rotating_light"), id="error-is-red-error"),
    ],
)
async def test_without_a_severity_the_effective_level_is_shown(
    outcome: str | None, colour: int, ntfy: tuple[str, str]
) -> None:
    discord = await _sent("discord://Abc-DEF_ghi123456789jkl@9", None, outcome)
    assert discord.json()["embeds"][0]["color"] == colour
    sent = await _sent("ntfy://ntfy.sh/alerts", None, outcome)
    assert (sent.last.headers["priority"], sent.last.headers["tags"]) == ntfy
    # The title says "failed" already: no tag is added for the implied level.
    telegram = await _sent(
        "telegram://123456:ABC-telegram-token_0123@telegram?chats=1", None, outcome
    )
    assert telegram.json()["text"].startswith(f"<b>{TITLE}</b>")


def _mail(severity: str | None, query: str = "") -> EmailMessage:
    url = f"smtp://mail.example.com:587/?from=a@x.io&to=b@x.io{query}"
    channel = create_channel(spec(url), ChannelDeps(http=httpx.AsyncClient()))
    assert isinstance(channel, SmtpChannel)
    return channel.build(make_message(title=TITLE, body="b", outcome=None, severity=severity))


def test_smtp_subject_is_tagged() -> None:
    subjects = [_mail(level)["Subject"] for level in LEVELS]
    assert subjects == list(TAGGED)
    assert _mail("error", "&subject=Prod")["Subject"] == f"[ERROR] Prod: {TITLE}"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_console_title_is_tagged_and_the_log_line_has_the_severity() -> None:
    screen = _Terminal()
    message = make_message(title=TITLE, body="b", outcome=None, severity="critical")
    assert (await ConsoleChannel("demo", stream=screen).send(message)).ok
    assert screen.getvalue().splitlines()[0] == f"[demo] [CRITICAL] {TITLE}"
    with capture_logs() as logs:
        await ConsoleChannel("demo", stream=io.StringIO()).send(message)
    [line] = [entry for entry in logs if entry["event"] == "notification"]
    assert line["severity"] == "critical" and line["title"] == f"[CRITICAL] {TITLE}"
