"""Text bound for a terminal: control characters shown, never obeyed.

Envelope fields such as ``error`` and metadata values are free text from
publishers; printed raw, an escape sequence in them could set the window
title, clear the screen or rewrite earlier lines of an operator's terminal.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with C0/C1 control characters written as escapes (``\\x1b``, ``\\n``).

    ``keep_newlines`` leaves line breaks alone for multi-line output (a
    notification body), still escaping every other control character.
    """
    if keep_newlines:
        return "\n".join(_CONTROL.sub(_escape, line) for line in text.split("\n"))
    return _CONTROL.sub(_escape, text)
