"""``console``: shows each notification where the worker runs. For first runs and demos.

On a terminal the notification is printed as text: the title, then the body
with its real line breaks, indented. Anywhere else (a pipe, the journal, a
container log) it is one structured ``notification`` log line, so JSON logs
stay one object per line. Titles carry the severity tag from ``warning`` up
(``[ERROR] ...``); the log line has a ``severity`` field.

Title and body are publishers' text: C0/C1 control characters in them are
written as escapes (``eventbus.terminal.printable``), so an event cannot set
the window title, clear the screen or rewrite earlier lines.
"""

from __future__ import annotations

import sys
from typing import TextIO

import structlog

from eventbus.settings import ChannelSpec
from eventbus.terminal import printable

from ._format import headline
from ._options import unknown_options
from .base import ChannelDeps, Message, OutcomeClass, SendResult

__all__ = ["ConsoleChannel", "create"]

log = structlog.get_logger("eventbus.console")

_INDENT = "    "


class ConsoleChannel:
    type = "console"

    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        self.name = name
        # None: the process's stdout at send time (tests and CLI runners swap it).
        self._stream = stream

    def describe(self) -> str:
        return "log output"

    async def send(self, message: Message) -> SendResult:
        stream = self._stream or sys.stdout
        title = printable(headline(message))
        body = printable(message.body, keep_newlines=True)
        if _is_terminal(stream):
            lines = [f"[{printable(self.name)}] {title}"]
            lines += [f"{_INDENT}{line}" for line in body.split("\n") if body]
            try:
                stream.write("\n".join(lines) + "\n")
                stream.flush()
            except (OSError, ValueError) as exc:  # closed or broken stdout: a result, no raise
                return SendResult(
                    OutcomeClass.RETRYABLE, error=f"console output failed: {type(exc).__name__}"
                )
        else:
            log.info(
                "notification",
                channel=self.name,
                title=title,
                body=body,
                severity=message.event.level.value,
                delivery_id=message.delivery_id,
            )
        return SendResult(OutcomeClass.DELIVERED)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or minimal stream
        return False


def create(spec: ChannelSpec, deps: ChannelDeps) -> ConsoleChannel:
    if spec.options:
        raise unknown_options("console", sorted(spec.options), [])
    return ConsoleChannel(spec.name)
