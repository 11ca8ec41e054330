"""The live-mirror message, written and parsed in this one place.

A durable publish mirrors ``{"stream_id":"<id>","event":<envelope>}`` to
Pub/Sub (the id lets an SSE client resume from the stream); a transient one
sends ``{"event":<envelope>}``. The Redis publish script builds the durable
form inside Redis, where the stream id is first known, so its Lua expression
comes from here as well.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

from .envelope import Event, parse_event
from .errors import EnvelopeError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "LiveMessage",
    "live_message",
    "lua_live_message",
    "parse_entry",
    "parse_live",
    "parse_stream_id",
]

MAX_MESSAGE_BYTES: Final = 256 * 1024

_STREAM_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")
# A live message's id: a stream id, qualified with its partition after '@'
# from partition 1 on (``eventbus.keys.qualified``).
_LIVE_ID = re.compile(r"^\d{1,20}(?:-\d{1,20})?(?:@\d{1,3})?$")


def live_message(stream_id: str | None, payload: str) -> str:
    """The message mirroring ``payload`` (envelope JSON); ``None`` for a transient one."""
    if stream_id is None:
        return '{"event":' + payload + "}"
    return '{"stream_id":"' + stream_id + '","event":' + payload + "}"


def lua_live_message(stream_id: str, payload: str) -> str:
    """The Lua expression building the durable message from two Lua expressions."""
    return f"'{{\"stream_id\":\"' .. {stream_id} .. '\",\"event\":' .. {payload} .. '}}'"


def parse_stream_id(value: str) -> tuple[int, int]:
    """``"1700000000000-3"`` as a comparable pair; ``ValueError`` if malformed."""
    match = _STREAM_ID.match(value)
    if match is None:
        raise ValueError(f"{value[:40]!r} is not a stream id such as 1700000000000-0")
    return int(match.group(1)), int(match.group(2) or 0)


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One live mirror message, parsed and validated once for every reader."""

    event: Event
    data: str  # the envelope JSON, sent as the SSE data
    stream_id: str | None = None  # durable events only (``<id>@<k>`` in partition k >= 1)


def parse_live(raw: bytes | str) -> LiveMessage:
    """A live mirror message ``{"stream_id"?, "event"}``; ``EnvelopeError`` if invalid."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise EnvelopeError(f"live message is {len(raw)} bytes, over {MAX_MESSAGE_BYTES}")
    try:
        obj = json.loads(raw)
    except ValueError:
        raise EnvelopeError("live message is not JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), dict):
        raise EnvelopeError("live message has no 'event' object")
    stream_id = obj.get("stream_id")
    if stream_id is not None and (
        not isinstance(stream_id, str) or _LIVE_ID.match(stream_id) is None
    ):
        raise EnvelopeError("live message has a malformed 'stream_id'")
    event = parse_event(obj["event"])
    return LiveMessage(event, event.to_json(), stream_id)


def parse_entry(stream_id: str, payload: bytes) -> LiveMessage:
    """The message a durable publish of this stream entry mirrored (for replays)."""
    # Bytes throughout: replay pages parse hundreds of entries straight from Redis.
    return parse_live(b'{"stream_id":"' + stream_id.encode() + b'","event":' + payload + b"}")
