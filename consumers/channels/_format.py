"""Shaping a rendered message for a transport: splitting, escaping, colours."""

from __future__ import annotations

import html
import re

from eventbus.envelope import Outcome

from .base import Message

__all__ = [
    "escape_html",
    "escape_markdown_v2",
    "outcome_color",
    "outcome_emoji",
    "plain_text",
    "split_text",
]

_MDV2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def plain_text(message: Message) -> str:
    """Title, body and the link (when the body does not already show it)."""
    text = message.text
    if message.link and message.link not in text:
        text = f"{text}\n{message.link}"
    return text


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at line ends where possible.

    A single line longer than ``limit`` is cut at the last space before the
    limit, or hard at the limit when it has none.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            head, line = line[:cut], line[cut:].lstrip(" ")
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
        candidate = f"{current}\n{line}" if current else line
        if current and len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts


def escape_html(text: str) -> str:
    """Telegram's HTML mode needs only ``<``, ``>`` and ``&`` escaped."""
    return html.escape(text, quote=False)


def escape_markdown_v2(text: str) -> str:
    return _MDV2_SPECIAL.sub(r"\\\1", text)


def outcome_color(message: Message) -> int:
    """Embed / card colour: green success, red error, blue for no outcome."""
    if message.event.outcome is Outcome.SUCCESS:
        return 0x2ECC71
    if message.event.outcome is Outcome.ERROR:
        return 0xE74C3C
    return 0x3498DB


def outcome_emoji(message: Message) -> str:
    if message.event.outcome is Outcome.SUCCESS:
        return "white_check_mark"
    if message.event.outcome is Outcome.ERROR:
        return "rotating_light"
    return "information_source"
