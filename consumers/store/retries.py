"""The durable retry schedule.

A retry lives in Redis, not in memory, so it survives restarts (written by
``consumers.store.commit`` together with the attempt's record):
- ``p:retries``         sorted set: delivery id -> due time (unix seconds)
- ``p:retry:<id>``      hash: the envelope payload, subscription, channel,
                        attempt count and the attempts so far; all a retry
                        needs once the stream entry has been trimmed. A
                        replay's job has ``replay_of`` too, written once when
                        the replay is queued (``consumers.replay``): the
                        commit's HSET of the other fields keeps it.

Any worker claims due retries with one script that moves their due time a
lease into the future: two workers never attempt the same retry at once, and
a worker that dies mid-attempt leaves the retry to be claimed again when the
lease runs out (at least once, like the stream).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import orjson
import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import translated
from eventbus.keys import Keys

from .records import Attempt

__all__ = ["RetryJob", "RetryPolicy", "RetryQueue"]

# KEYS[1] retries zset; ARGV: now, lease seconds, max count, key prefix for jobs
_CLAIM: Final = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local out = {}
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
  local job = redis.call('HGETALL', ARGV[4] .. id)
  table.insert(out, id)
  table.insert(out, job)
end
return out
"""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When the next attempt is due after a retryable failure."""

    schedule: Sequence[float]
    jitter: float = 0.2
    retry_after_max: float = 86400.0

    @property
    def patience(self) -> float:
        """How long a delivery may keep being rate limited before it fails.

        As long as its retry schedule would have kept trying, and at least
        ``retry_after_max``: a provider that always answers 429 must not be
        retried forever.
        """
        return max(sum(self.schedule), self.retry_after_max)

    def delay(
        self, attempts: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds until attempt ``attempts + 1``; ``None`` when retries are exhausted.

        A provider's ``Retry-After`` is honoured, clamped to [1 s, retry_after_max].
        """
        if attempts > len(self.schedule):
            return None
        if retry_after is not None:
            return min(max(retry_after, 1.0), self.retry_after_max)
        base = self.schedule[attempts - 1]
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1 + spread))


@dataclass(frozen=True, slots=True)
class RetryJob:
    delivery_id: str
    payload: bytes
    subscription: str
    channel: str
    attempts: int
    created_at: float
    # The attempts so far: the record written after the next one keeps them.
    history: tuple[Attempt, ...] = ()
    replay_of: str | None = None  # a replay: the delivery id it replays

    def history_json(self) -> bytes:
        return orjson.dumps(self.history)


class RetryQueue:
    def __init__(self, redis: aioredis.Redis, keys: Keys, ttl: float) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = int(ttl)
        self._claim = redis.register_script(_CLAIM)

    async def claim(self, now: float, lease: float, count: int) -> list[RetryJob]:
        """Due retries, leased to the caller for ``lease`` seconds."""
        async with translated("claim retries"):
            reply = await self._claim(
                keys=[self.keys.retries],
                args=[now, lease, count, self.keys.retry_job("")],
            )
        jobs: list[RetryJob] = []
        for at in range(0, len(reply), 2):
            raw = reply[at + 1]
            delivery_id = reply[at].decode()
            if not raw:
                # The job hash expired: nothing left to retry with.
                async with translated("drop retry"):
                    await self.redis.zrem(self.keys.retries, delivery_id)
                continue
            job = {raw[j].decode(): raw[j + 1] for j in range(0, len(raw), 2)}
            jobs.append(
                RetryJob(
                    delivery_id=delivery_id,
                    payload=job["payload"],
                    subscription=job["subscription"].decode(),
                    channel=job["channel"].decode(),
                    attempts=int(job["attempts"]),
                    created_at=float(job["created_at"]),
                    history=tuple(
                        Attempt.from_dict(a) for a in orjson.loads(job.get("history") or b"[]")
                    ),
                    replay_of=job["replay_of"].decode() if "replay_of" in job else None,
                )
            )
        return jobs

    async def due_count(self, now: float) -> int:
        async with translated("count due retries"):
            return int(await self.redis.zcount(self.keys.retries, "-inf", now))

    async def next_due(self) -> float | None:
        async with translated("next retry"):
            first = await self.redis.zrange(self.keys.retries, 0, 0, withscores=True)
        return float(first[0][1]) if first else None
