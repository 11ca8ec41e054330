"""The console channel: real line breaks on a terminal, control characters escaped."""

from __future__ import annotations

import io

from structlog.testing import capture_logs

from consumers.channels.console import ConsoleChannel

from .support import make_message

HOSTILE_TITLE = "host.down\x1b]0;owned\x07 on db1"
HOSTILE_BODY = "Outcome: error\nError: disk\x1b[2J full\r\x9b31m\nTeam: t1"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_a_terminal_gets_real_line_breaks_and_escaped_controls() -> None:
    screen = Terminal()
    channel = ConsoleChannel("demo", stream=screen)
    result = await channel.send(make_message(title=HOSTILE_TITLE, body=HOSTILE_BODY))
    assert result.ok
    assert screen.getvalue() == (
        "[demo] host.down\\x1b]0;owned\\x07 on db1\n"
        "    Outcome: error\n"
        "    Error: disk\\x1b[2J full\\r\\x9b31m\n"
        "    Team: t1\n"
    )


async def test_elsewhere_it_is_one_structured_log_line_with_escaped_text() -> None:
    pipe = io.StringIO()  # not a terminal
    with capture_logs() as logs:
        await ConsoleChannel("demo", stream=pipe).send(
            make_message(title=HOSTILE_TITLE, body=HOSTILE_BODY)
        )
    assert pipe.getvalue() == ""
    (line,) = [entry for entry in logs if entry["event"] == "notification"]
    assert line["title"] == "host.down\\x1b]0;owned\\x07 on db1"
    assert "\x1b" not in line["body"] and "\x9b" not in line["body"]
    assert line["body"].split("\n")[0] == "Outcome: error"


async def test_a_closed_terminal_is_a_result_not_a_raise() -> None:
    screen = Terminal()
    channel = ConsoleChannel("demo", stream=screen)
    screen.close()
    result = await channel.send(make_message())
    assert not result.ok and result.error == "console output failed: ValueError"
