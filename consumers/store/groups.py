"""Digest groups: events waiting to be sent together, and claiming the due ones.

Layout (prefix ``p``; every key under the hash tag, written only by
``consumers.store.commit`` except for the claim below):
- ``p:groups``                  sorted set: group id -> when its next digest is due
- ``p:group:<gid>``             hash: subscription, channel, group (JSON of the
                                ``group_by`` values), interval, ``open`` (the digest
                                collecting events), ``flushing`` (the digest being
                                sent), ``opened_at`` of each, ``last_flush``
- ``p:digests:seq``             counter: numbers digests, so an id is never reused
- ``p:digest:<did>:ids``        sorted set: the digest's event ids by arrival
- ``p:digest:<did>:events``     hash: event id -> envelope, for the first
                                ``digest_max_events`` of them

A digest id is ``dg_<gid>_<n>``: the group and a number from the sequence,
taken by the commit script when the first event of a digest arrives, so the
script writes each grouped record already naming the digest it joined.

Claiming a due group turns its ``open`` digest into ``flushing`` (events
arriving from then on open the next digest) and leases it: its due time moves
a lease ahead. A worker that dies before committing the digest's delivery
leaves it ``flushing``; once the lease runs out any worker claims the same
digest (same id, same events) again. The commit of the digest's delivery
(``Settlement.flushed``) drops its events and makes the group due again
``group_interval`` later if events wait, or idle until the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson
import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import translated
from eventbus.keys import Keys

from .settlement import GroupFlush

__all__ = ["DueGroup", "GroupQueue"]

# KEYS[1] due groups; ARGV: now, lease, max count, group key base, digest key base
_CLAIM: Final = """
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[3])
local out = {}
for _, gid in ipairs(due) do
  local meta = ARGV[4] .. gid
  local digest = redis.call('HGET', meta, 'flushing')
  if not digest then
    digest = redis.call('HGET', meta, 'open')
    if digest and redis.call('EXISTS', ARGV[5] .. digest .. ':ids') == 1 then
      -- opened_at belongs to the open digest: the flushing one keeps its own
      redis.call('HSET', meta, 'flushing', digest,
                 'flushing_opened_at', redis.call('HGET', meta, 'opened_at'))
      redis.call('HDEL', meta, 'open')
    else
      digest = false
    end
  end
  if digest then
    redis.call('ZADD', KEYS[1], now + lease, gid)
    local ids = ARGV[5] .. digest .. ':ids'
    local docs = redis.call('HGETALL', ARGV[5] .. digest .. ':events')
    local events = {}
    for j = 1, #docs, 2 do
      events[#events + 1] = docs[j]
      events[#events + 1] = redis.call('ZSCORE', ids, docs[j]) or '0'
      events[#events + 1] = docs[j + 1]
    end
    out[#out + 1] = {gid, digest, redis.call('HGETALL', meta), redis.call('ZCARD', ids), events}
  else
    redis.call('ZREM', KEYS[1], gid)
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class DueGroup:
    """A claimed digest: what its delivery needs, in arrival order."""

    group_id: str
    digest_id: str
    subscription: str
    channel: str
    values: dict[str, str | None]  # group_by path -> value
    opened_at: float
    count: int  # events in the digest; at most the first ``max_events`` are in ``events``
    events: tuple[bytes, ...]  # envelopes (JSON)

    @property
    def flush(self) -> GroupFlush:
        """What the digest's commit does to the group."""
        return GroupFlush(self.group_id, self.digest_id)


class GroupQueue:
    """Claims due digests, as ``RetryQueue`` claims due retries."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._claim = redis.register_script(_CLAIM)

    async def claim(self, now: float, lease: float, count: int) -> list[DueGroup]:
        """Due digests, leased to the caller for ``lease`` seconds."""
        keys = self.keys
        async with translated("claim digests"):
            reply = await self._claim(
                keys=[keys.groups], args=[now, lease, count, keys.group(""), keys.digest("")]
            )
        return [_due(item) for item in reply]

    async def due_count(self, now: float) -> int:
        async with translated("count due digests"):
            return int(await self.redis.zcount(self.keys.groups, "-inf", now))

    async def next_due(self, group_id: str) -> float | None:
        """When the digest of ``group_id`` is due (``None``: the group is idle)."""
        async with translated("next digest"):
            score = await self.redis.zscore(self.keys.groups, group_id)
        return None if score is None else float(score)


def _due(item: list[Any]) -> DueGroup:
    group_id, digest_id, raw_meta, count, raw_events = item
    meta = {raw_meta[at].decode(): raw_meta[at + 1] for at in range(0, len(raw_meta), 2)}
    arrivals = sorted(
        (float(raw_events[at + 1]), raw_events[at], raw_events[at + 2])
        for at in range(0, len(raw_events), 3)
    )
    return DueGroup(
        group_id=group_id.decode(),
        digest_id=digest_id.decode(),
        subscription=meta.get("subscription", b"").decode(),
        channel=meta.get("channel", b"").decode(),
        values=orjson.loads(meta.get("group") or b"{}"),
        opened_at=float(meta.get("flushing_opened_at") or 0),
        count=int(count),
        events=tuple(envelope for _, _, envelope in arrivals),
    )
