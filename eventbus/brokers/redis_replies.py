"""Redis replies as eventbus values: stream entries, dead letters, Pub/Sub messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from .base import DeadLetter
from .redis_errors import reply_text, translated

__all__ = ["StreamEntry", "confirmed", "dead_letter", "entries", "live_messages"]


@dataclass(slots=True)  # not frozen: one per entry read, and frozen inits cost 4x
class StreamEntry:
    """One stream entry as read by a consumer."""

    id: str
    fields: dict[bytes, bytes]

    @property
    def payload(self) -> bytes | None:
        return self.fields.get(b"payload")


def entries(reply: Any) -> list[StreamEntry]:
    out: list[StreamEntry] = []
    if not reply:
        return out
    for _stream, rows in reply:
        for entry_id, fields in rows:
            # A pending entry that was deleted from the stream comes back as None.
            out.append(StreamEntry(reply_text(entry_id), dict(fields or {})))
    return out


def dead_letter(raw_id: Any, fields: dict[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        id=reply_text(raw_id),
        original_id=reply_text(fields.get(b"dlq_original_id", b"")),
        reason=reply_text(fields.get(b"dlq_reason", b"")),
        error=reply_text(fields.get(b"dlq_error", b"")),
        at=float(fields.get(b"dlq_at", b"0") or 0),
        payload=fields.get(b"payload", b""),
    )


async def confirmed(pubsub: Any) -> None:
    """Wait for Redis to confirm the subscription: what is published before is not seen."""
    async with asyncio.timeout(10):
        while True:
            reply = await pubsub.get_message(timeout=10)
            if reply is not None and reply["type"] == "psubscribe":
                return


async def live_messages(pubsub: Any) -> AsyncIterator[bytes]:
    while True:
        async with translated("read the live mirror"):
            message = await pubsub.get_message(timeout=None)
        if message is not None and message.get("type") == "pmessage":
            data = message["data"]
            yield data if isinstance(data, bytes) else str(data).encode()
