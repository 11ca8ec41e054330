"""Dead letters: entries that cannot be processed, kept with the reason.

``p:dlq`` is a stream whose entries carry the original fields, the original
entry id, the reason and the time. ``redrive`` puts an entry back on the
event stream (after the operator fixed the cause) and removes it here.

With ``broker.partitions`` N > 1 each partition has its dead letters beside
its stream; ``DeadLetters(..., partitions=N)`` lists them all (oldest first,
ids qualified ``<id>@<k>`` from partition 1 on) and redrives each onto its
own partition's stream.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import reply_text, translated
from eventbus.keys import Keys, qualified, split_entry

__all__ = ["DeadLetter", "DeadLetters"]

_META = (b"dlq_reason", b"dlq_error", b"dlq_at", b"dlq_original_id", b"dlq_group")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    original_id: str
    reason: str
    error: str
    at: float
    fields: dict[bytes, bytes]

    def to_dict(self) -> dict[str, object]:
        payload = self.fields.get(b"payload", b"")
        return {
            "id": self.id,
            "original_id": self.original_id,
            "reason": self.reason,
            "error": self.error,
            "at": self.at,
            "payload": payload.decode("utf-8", "replace")[:2000],
        }


class DeadLetters:
    def __init__(self, redis: aioredis.Redis, keys: Keys, partitions: int = 1) -> None:
        self.redis = redis
        self.keys = keys
        self.partitions = partitions

    def _part(self, part: int) -> DeadLetters:
        return DeadLetters(self.redis, self.keys.partition(part))

    async def entries(self, count: int = 100) -> list[DeadLetter]:
        if self.partitions > 1:
            found = [
                dataclasses.replace(dead, id=qualified(dead.id, part))
                for part in range(self.partitions)
                for dead in await self._part(part).entries(count)
            ]
            return sorted(found, key=lambda dead: dead.at)[:count]
        async with translated("list dead letters"):
            rows: Any = await self.redis.xrange(self.keys.dlq, count=count)
        return [self._parse(i, f) for i, f in rows]

    async def count(self) -> int:
        if self.partitions > 1:
            return sum([await self._part(part).count() for part in range(self.partitions)])
        async with translated("count dead letters"):
            return int(await self.redis.xlen(self.keys.dlq))

    async def redrive(self, ids: list[str] | None = None) -> list[tuple[str, str]]:
        """Put entries back on the stream; ``None`` = all. Returns (dlq id, new id)."""
        if self.partitions > 1:
            return await self._redrive_parts(ids)
        async with translated("redrive dead letters"):
            rows: Any
            if ids is None:
                rows = await self.redis.xrange(self.keys.dlq)
            else:
                rows = []
                for entry_id in ids:
                    rows.extend(await self.redis.xrange(self.keys.dlq, entry_id, entry_id))
            moved = []
            for raw_id, fields in rows:
                original = {k: v for k, v in fields.items() if k not in _META}
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.xadd(self.keys.events, original)
                    pipe.xdel(self.keys.dlq, raw_id)
                    new_id, _ = await pipe.execute()
                moved.append((reply_text(raw_id), reply_text(new_id)))
        return moved

    async def _redrive_parts(self, ids: list[str] | None) -> list[tuple[str, str]]:
        wanted: dict[int, list[str]] = {}
        for key in ids or ():
            dead_id, part = split_entry(key)
            if part >= self.partitions:
                raise ValueError(
                    f"dead letter {key!r} names partition {part}, but broker.partitions "
                    f"is {self.partitions}"
                )
            wanted.setdefault(part, []).append(dead_id)
        moved = []
        for part in range(self.partitions):
            if ids is None or part in wanted:
                for old, new in await self._part(part).redrive(wanted.get(part)):
                    moved.append((qualified(old, part), qualified(new, part)))
        return moved

    def _parse(self, raw_id: bytes | str, fields: dict[bytes, bytes]) -> DeadLetter:
        return DeadLetter(
            id=reply_text(raw_id),
            original_id=reply_text(fields.get(b"dlq_original_id", b"")),
            reason=reply_text(fields.get(b"dlq_reason", b"")),
            error=reply_text(fields.get(b"dlq_error", b"")),
            at=float(fields.get(b"dlq_at", b"0") or 0),
            fields={k: v for k, v in fields.items() if k not in _META},
        )
