"""Housekeeping of the stream and the consumer group.

- Safe retention: trim only entries that every consumer group has
  acknowledged (``XTRIM MINID`` below the oldest pending or not yet delivered
  entry of all groups), keeping acknowledged entries for at least
  ``consumer.retention_min_age`` for SSE replay. This replaces a blind
  ``MAXLEN``, which can drop entries no worker has processed yet.
- Dead consumers: a consumer with no pending entries that has been idle for
  longer than ``consumer.dead_consumer_idle`` is removed from the group, in a
  script that checks "no pending" and deletes atomically, so a consumer that
  still owns entries is never deleted.
- Gauges: stream lag and pending count of the group.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import reply_text, translated
from eventbus.keys import Keys

__all__ = ["GroupStats", "Maintenance", "safe_min_id"]

# KEYS[1] stream; ARGV: group, consumer. Deletes only when nothing is pending.
_DEL_IDLE_CONSUMER: Final = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""


@dataclass(frozen=True, slots=True)
class GroupStats:
    name: str
    pending: int
    lag: int | None
    last_delivered: str


def _id_tuple(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _next_id(stream_id: str) -> str:
    ms, seq = _id_tuple(stream_id)
    return f"{ms}-{seq + 1}"


def safe_min_id(groups: list[tuple[str, str | None]], min_age_cut: str | None) -> str | None:
    """The lowest id that must be kept.

    ``groups`` holds (last delivered id, oldest pending id or None) per group.
    Everything below the result is acknowledged by every group.
    """
    if not groups:
        return None
    keep = []
    for last_delivered, oldest_pending in groups:
        keep.append(oldest_pending if oldest_pending is not None else _next_id(last_delivered))
    lowest = min(keep, key=_id_tuple)
    if min_age_cut is not None and _id_tuple(min_age_cut) < _id_tuple(lowest):
        lowest = min_age_cut
    return lowest


class Maintenance:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._del_consumer = redis.register_script(_DEL_IDLE_CONSUMER)

    async def group_stats(self) -> list[GroupStats]:
        async with translated("group info"):
            try:
                groups = await self.redis.xinfo_groups(self.keys.events)
            except aioredis.ResponseError:
                return []  # no stream yet
        return [
            GroupStats(
                name=reply_text(g["name"]),
                pending=int(g["pending"]),
                lag=int(g["lag"]) if g.get("lag") is not None else None,
                last_delivered=reply_text(g["last-delivered-id"]),
            )
            for g in groups
        ]

    async def trim(self, min_age: float, now: float | None = None) -> int:
        """Remove entries every group has acknowledged; returns how many went."""
        stats = await self.group_stats()
        if not stats:
            return 0
        pairs: list[tuple[str, str | None]] = []
        async with translated("trim"):
            for group in stats:
                oldest = None
                if group.pending:
                    summary: dict[str, Any] = await self.redis.xpending(
                        self.keys.events, group.name
                    )
                    oldest = reply_text(summary["min"]) if summary.get("min") else None
                pairs.append((group.last_delivered, oldest))
            cut = f"{int(((now or time.time()) - min_age) * 1000)}-0"
            min_id = safe_min_id(pairs, cut)
            if min_id is None:
                return 0
            return int(await self.redis.xtrim(self.keys.events, minid=min_id, approximate=False))

    async def remove_dead_consumers(self, group: str, idle: float, me: str) -> list[str]:
        removed = []
        async with translated("consumer cleanup"):
            consumers = await self.redis.xinfo_consumers(self.keys.events, group)
            for consumer in consumers:
                name = reply_text(consumer["name"])
                busy = int(consumer["pending"]) > 0 or int(consumer["idle"]) < idle * 1000
                if name == me or busy:
                    continue
                if int(await self._del_consumer(keys=[self.keys.events], args=[group, name])) >= 0:
                    removed.append(name)
        return removed
