"""Silences in Redis: operator-set mutes of one team's events, each with an expiry.

Layout (prefix ``p``, all under its hash tag except the Pub/Sub channel):
- ``{p}:silence:<id>``       JSON string: the silence; expires when it ends
- ``{p}:silences``           sorted set of silence ids by end time (ms)
- ``{p}:silences:version``   counter raised by every change
- ``p:silences:changed``     Pub/Sub channel: the new version, on every change

Every change (add, expire) is one atomic script: the silence, the index, the
version and the notice together. Workers keep the silences in memory
(``consumers.routing.silencing.SilenceBook``): a notice makes them reload at
once, and they poll the version as a backstop for notices lost while their
Pub/Sub connection was down. An ended silence stops matching at its end time
whatever Redis has evicted yet: readers check ``ends_at`` themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
import structlog

from eventbus.brokers.redis_streams import reply_text, translated
from eventbus.errors import EventBusError
from eventbus.keys import Keys

__all__ = ["MAX_SILENCES", "Silence", "SilenceError", "SilenceStore", "format_time"]

log = structlog.get_logger("eventbus.silences")

# Silences in force at once (all teams): each worker checks them per event.
MAX_SILENCES: Final = 1000

# KEYS: silence, index, version. ARGV: json, ends (ms), id, now (ms), channel, max
_ADD: Final = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[6]) then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local version = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[5], version)
return version
"""
# KEYS: silence, index, version. ARGV: id, channel. Returns 0 when there was none.
_EXPIRE: Final = """
local removed = redis.call('DEL', KEYS[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
if removed == 0 then return 0 end
redis.call('PUBLISH', ARGV[2], redis.call('INCR', KEYS[3]))
return 1
"""


class SilenceError(EventBusError, ValueError):
    """A silence that cannot be made; ``problems`` lists each thing wrong with it."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def format_time(seconds: float) -> str:
    """RFC 3339 UTC to the second, as silences and their reasons show times."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence: the events of ``team`` matching every matcher are not sent.

    ``matchers`` are texts (``event=host.*``), checked when the silence is
    made (``consumers.routing.silence_rules``). Times are Unix seconds; the
    silence holds from ``starts_at`` until (not at) ``ends_at``.
    """

    id: str
    team: str
    matchers: tuple[str, ...]
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = ""
    created_at: float = field(default=0.0)

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team": self.team,
            "matchers": list(self.matchers),
            "starts_at": format_time(self.starts_at),
            "ends_at": format_time(self.ends_at),
            "comment": self.comment,
            "created_by": self.created_by,
            "created_at": format_time(self.created_at),
        }

    def to_json(self) -> bytes:
        data = {
            "id": self.id,
            "team": self.team,
            "matchers": list(self.matchers),
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "comment": self.comment,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Silence:
        data = orjson.loads(raw)
        data["matchers"] = tuple(data["matchers"])
        return cls(**data)


def _decoded(raw: bytes) -> Silence | None:
    """A stored silence, or ``None`` (logged) when it cannot be read: never stop the others."""
    try:
        return Silence.from_json(raw)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("silence.unreadable", error=str(exc)[:200])
        return None


class SilenceStore:
    """Reads and changes the silences under one prefix."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._add = redis.register_script(_ADD)
        self._expire = redis.register_script(_EXPIRE)

    def __repr__(self) -> str:
        return f"SilenceStore(prefix={self.keys.prefix!r})"

    async def add(self, silence: Silence, now: float) -> int:
        """Store ``silence`` (it must end after ``now``), tell every worker; the new version."""
        if silence.ends_at <= now:
            raise SilenceError([f"silence {silence.id} ends before it could start"])
        keys = [self.keys.silence(silence.id), self.keys.silences, self.keys.silences_version]
        args: list[bytes | str | int] = [
            silence.to_json(),
            math.ceil(silence.ends_at * 1000),
            silence.id,
            int(now * 1000),
            self.keys.silences_changed,
            MAX_SILENCES,
        ]
        async with translated("add a silence"):
            version = await self._add(keys=keys, args=args)
        if int(version) < 0:
            raise SilenceError(
                [
                    f"{MAX_SILENCES} silences are in force already, the limit: expire some "
                    "(`eventbus silence list`, `eventbus silence expire ID`) first"
                ]
            )
        return int(version)

    async def get(self, silence_id: str, now: float) -> Silence | None:
        """The silence with that id while it is in force (``None`` once it ended)."""
        async with translated("read a silence"):
            raw = await self.redis.get(self.keys.silence(silence_id))
        silence = Silence.from_json(raw) if raw else None
        return silence if silence is not None and silence.ends_at > now else None

    async def load(self, now: float) -> tuple[int, list[Silence]]:
        """The version and every silence not ended at ``now`` (soonest end first)."""
        async with translated("read the silences"):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.get(self.keys.silences_version)
                pipe.zrangebyscore(self.keys.silences, f"({int(now * 1000)}", "+inf")
                version, ids = await pipe.execute()
            raws: list[Any] = (
                await self.redis.mget([self.keys.silence(reply_text(i)) for i in ids])
                if ids
                else []
            )
        found = [silence for raw in raws if raw and (silence := _decoded(raw)) is not None]
        return int(version or 0), [s for s in found if s.ends_at > now]

    async def version(self) -> int:
        """The change counter: a worker reloads when it differs from what it loaded."""
        async with translated("read the silences' version"):
            raw = await self.redis.get(self.keys.silences_version)
        return int(raw or 0)

    async def expire(self, silence_id: str) -> bool:
        """End a silence now; ``False`` when there was none with that id."""
        keys = [self.keys.silence(silence_id), self.keys.silences, self.keys.silences_version]
        async with translated("expire a silence"):
            done = await self._expire(keys=keys, args=[silence_id, self.keys.silences_changed])
        return bool(done)
