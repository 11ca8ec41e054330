"""Delivery records: one per (event, subscription, channel), every attempt kept.

Layout (prefix ``p``):
- ``p:delivery:<id>``     hash, the record's current state
- ``p:attempts:<id>``     list of JSON attempts, oldest first
- ``p:deliveries``        sorted set of ids by last update (queries, pruning)
- ``p:event:<eid>:deliveries``  set of the event's delivery ids
- ``p:channels``          hash, channel name -> JSON state (disabled, last outcome)

Writes are added to a caller's pipeline so that the worker records and acks
in one MULTI/EXEC; records expire after ``consumer.record_ttl``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from eventbus.brokers.redis_streams import translated
from eventbus.keys import Keys

__all__ = [
    "Attempt",
    "ChannelState",
    "DeliveryRecord",
    "DeliveryStatus",
    "DeliveryStore",
    "delivery_id",
]


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    SKIPPED = "skipped"


def delivery_id(event_id: str, subscription: str, channel: str) -> str:
    """Stable id of one (event, subscription, channel); sent as ``webhook-id``."""
    digest = hashlib.sha256(f"{event_id}\x00{subscription}\x00{channel}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    at: float
    duration: float
    outcome: str
    status: int | None = None
    error: str | None = None
    response: str | None = None


@dataclass(slots=True)
class DeliveryRecord:
    id: str
    event_id: str
    event_type: str
    team_id: str
    subscription: str
    channel: str
    channel_type: str
    status: DeliveryStatus
    attempts: int = 0
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    next_attempt_at: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    reason: str | None = None
    history: list[Attempt] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    def _hash(self) -> dict[str, str]:
        data = self.to_dict()
        data.pop("history")
        return {k: "" if v is None else str(v) for k, v in data.items()}

    @classmethod
    def _from_hash(cls, raw: dict[bytes, bytes]) -> DeliveryRecord:
        d = {k.decode(): v.decode() for k, v in raw.items()}

        def opt_float(key: str) -> float | None:
            return float(d[key]) if d.get(key) else None

        return cls(
            id=d["id"],
            event_id=d["event_id"],
            event_type=d["event_type"],
            team_id=d["team_id"],
            subscription=d["subscription"],
            channel=d["channel"],
            channel_type=d["channel_type"],
            status=DeliveryStatus(d["status"]),
            attempts=int(d.get("attempts") or 0),
            created_at=float(d["created_at"]),
            updated_at=float(d["updated_at"]),
            next_attempt_at=opt_float("next_attempt_at"),
            last_status=int(d["last_status"]) if d.get("last_status") else None,
            last_error=d.get("last_error") or None,
            reason=d.get("reason") or None,
        )


@dataclass(frozen=True, slots=True)
class ChannelState:
    disabled: bool = False
    reason: str | None = None
    at: float | None = None
    last_outcome: str | None = None
    last_at: float | None = None


class DeliveryStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, ttl: float = 7 * 86400) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = int(ttl)

    # -- writing (into the caller's MULTI) ---------------------------------

    def add(self, pipe: Pipeline, record: DeliveryRecord, attempt: Attempt | None) -> None:
        """Queue the record's new state (and ``attempt``) on ``pipe``."""
        k = self.keys
        key = k.delivery(record.id)
        pipe.hset(key, mapping=dict(record._hash()))  # type: ignore[arg-type]
        pipe.expire(key, self.ttl)
        if attempt is not None:
            attempts = k.attempts(record.id)
            pipe.rpush(attempts, json.dumps(asdict(attempt), separators=(",", ":")))
            pipe.expire(attempts, self.ttl)
        pipe.zadd(k.deliveries_index, {record.id: record.updated_at})
        event_key = k.event_deliveries(record.event_id)
        pipe.sadd(event_key, record.id)
        pipe.expire(event_key, self.ttl)

    def set_channel_state(self, pipe: Pipeline, name: str, state: ChannelState) -> None:
        pipe.hset(self.keys.channel_state, name, json.dumps(asdict(state)))

    # -- reading -------------------------------------------------------------

    async def get(self, record_id: str, *, history: bool = True) -> DeliveryRecord | None:
        async with translated("read delivery"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(self.keys.delivery(record_id))
            pipe.lrange(self.keys.attempts(record_id), 0, -1)
            raw, attempts = await pipe.execute()
        if not raw:
            return None
        record = DeliveryRecord._from_hash(raw)
        if history:
            record.history = [Attempt(**json.loads(a)) for a in attempts]
        return record

    async def query(
        self,
        *,
        event_id: str | None = None,
        status: str | None = None,
        channel: str | None = None,
        since: float | None = None,
        limit: int = 50,
        history: bool = False,
    ) -> list[DeliveryRecord]:
        """Newest first. ``since`` is a unix time; ``history`` loads attempts."""
        async with translated("query deliveries"):
            if event_id is not None:
                members: Any = await self.redis.smembers(self.keys.event_deliveries(event_id))
                ids = [_s(i) for i in members]
            else:
                low = since if since is not None else "-inf"
                # Filters are applied after fetching; scan a bounded window.
                window = limit if status is None and channel is None else max(limit * 20, 2000)
                found: Any = await self.redis.zrevrangebyscore(
                    self.keys.deliveries_index, "+inf", low, start=0, num=window
                )
                ids = [_s(i) for i in found]
            records = await self._load(ids, history)
        out = [
            r
            for r in records
            if (status is None or r.status.value == status)
            and (channel is None or r.channel == channel)
            and (since is None or r.updated_at >= since)
        ]
        out.sort(key=lambda r: r.updated_at, reverse=True)
        return out[:limit]

    async def _load(self, ids: Sequence[str], history: bool) -> list[DeliveryRecord]:
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for record_id in ids:
            pipe.hgetall(self.keys.delivery(record_id))
            if history:
                pipe.lrange(self.keys.attempts(record_id), 0, -1)
        results = await pipe.execute()
        step = 2 if history else 1
        out = []
        for i in range(0, len(results), step):
            if not results[i]:
                continue  # expired
            record = DeliveryRecord._from_hash(results[i])
            if history:
                record.history = [Attempt(**json.loads(a)) for a in results[i + 1]]
            out.append(record)
        return out

    async def channel_states(self) -> dict[str, ChannelState]:
        async with translated("read channel states"):
            raw: Any = await self.redis.hgetall(self.keys.channel_state)
        return {_s(k): ChannelState(**json.loads(v)) for k, v in raw.items()}

    async def enable_channel(self, name: str) -> None:
        """Clear a channel's disabled flag (after the operator fixed it)."""
        async with translated("enable channel"):
            await self.redis.hdel(self.keys.channel_state, name)

    async def prune_index(self, now: float | None = None) -> int:
        """Drop index entries of records past their TTL."""
        cutoff = (now or time.time()) - self.ttl
        async with translated("prune delivery index"):
            return int(
                await self.redis.zremrangebyscore(self.keys.deliveries_index, "-inf", cutoff)
            )


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
