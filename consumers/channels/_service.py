"""Small pieces the shoutrrr-service channels (bark, ifttt, join, lark,
pushbullet, rocketchat) share: numbers as shoutrrr reads them, a provider's
verdict in an answer's body, the title prefix.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from eventbus.errors import ChannelConfigError

from .base import Message, OutcomeClass, SendResult
from .urls import ParsedURL

__all__ = [
    "body_json",
    "failed",
    "go_int",
    "plain_fragment",
    "prefixed_title",
    "with_detail",
]


def go_int(value: str, what: str) -> int:
    """A whole number as shoutrrr reads one (Go's ``ParseInt`` with base 0, or hex
    after ``#`` / ``0x``); ``what`` names it in the error."""
    text = value.strip()
    try:
        if text.startswith("#"):
            return int(text[1:], 16)
        if text[:2].lower() == "0x":
            return int(text[2:], 16)
        if re.fullmatch(r"[+-]?0[0-7_]+", text):
            return int(text, 8)  # Go's base 0: a leading 0 is octal
        return int(text, 0)
    except ValueError:
        raise ChannelConfigError(f"{what} is {value!r}: use a whole number") from None


def plain_fragment(url: ParsedURL) -> str:
    """The URL's fragment (a channel), refusing one that swallowed the query.

    Go ends the URL's query at the '#', so in ``.../#channel?title=x`` the
    query is part of the channel name and silently lost.
    """
    if "?" in url.fragment:
        raise ChannelConfigError(
            f"{url.scheme} URL has its query after the '#channel': everything after '#' is "
            "the channel name; put the query before it (.../?title=x#channel)"
        )
    return url.fragment


def prefixed_title(prefix: str, message: Message) -> str:
    """The message title behind the URL's ``title=`` (as every channel here does)."""
    return f"{prefix}: {message.title}" if prefix else message.title


def body_json(body: bytes) -> dict[str, Any] | None:
    """A JSON object body, or None for anything else."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def with_detail(result: SendResult, service: str, detail: object) -> SendResult:
    """``result`` with what the provider said appended to its error."""
    text = str(detail).strip()[:300]
    if result.ok or not text:
        return result
    return replace(result, error=f"{result.error}: {service} says {text}")


def failed(
    result: SendResult,
    service: str,
    detail: object,
    outcome: OutcomeClass = OutcomeClass.PERMANENT,
    retry_after: float | None = None,
) -> SendResult:
    """An answer whose body reports a failure (most often in a 2xx)."""
    joint = " but" if result.ok else ":"
    return SendResult(
        outcome,
        status=result.status,
        latency=result.latency,
        error=f"HTTP {result.status}{joint} {service} says {str(detail).strip()[:300]}",
        response_excerpt=result.response_excerpt,
        retry_after=retry_after,
    )
