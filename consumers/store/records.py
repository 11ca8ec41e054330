"""Delivery records: one per (event, subscription, channel), every attempt kept.

Layout (prefix ``p``):
- ``p:delivery:<id>``     JSON string: the record's current state and every
                          attempt, oldest first (``history``)
- ``p:deliveries``        sorted set of ids by last update (queries, pruning)
- ``p:event:<eid>:deliveries``  set of the event's delivery ids
- ``p:channels``          hash, channel name -> JSON state (disabled, last outcome)

A failed or skipped record keeps the envelope it was for (``payload``), so an
operator can resend it after the stream entry was trimmed
(``consumers.resend``); a replayed delivery names the delivery it replays
(``replay_of``, see ``consumers.replay``).

This module reads them; ``consumers.store.commit`` writes them, in the same atomic
script that acknowledges the entry. Records expire after
``consumer.record_ttl``.

A stream entry that repeats an event whose delivery is ``delivered`` already
(a publish sent twice, an entry reclaimed after its deliveries were
committed elsewhere) is not sent again: the record stays ``delivered`` and
gains a history item with outcome ``duplicate`` naming the entry
(``note_duplicate``). Attempts are not counted for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import AsyncGenerator, Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import reply_text, translate_errors, translated
from eventbus.keys import Keys

__all__ = [
    "DUPLICATE",
    "RESEND",
    "Attempt",
    "ChannelState",
    "DeliveryRecord",
    "DeliveryStatus",
    "DeliveryStore",
    "delivery_id",
    "note_duplicate",
    "round_start",
]


# Records looked at per round trip when a query filters.
_QUERY_PAGE = 1000

# The outcome of a history item that notes a duplicate entry (not an attempt).
DUPLICATE = "duplicate"
# Duplicate notes kept per record (the newest): a producer repeating one event
# id all week must not grow its record without bound.
_DUPLICATE_NOTES = 20
# The outcome of a history item that notes an operator's resend (not an attempt).
RESEND = "resend"


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    SKIPPED = "skipped"
    # Routing decisions that send nothing (``refers_to`` names what explains it).
    SUPPRESSED = "suppressed"  # inside a cooldown window
    GROUPED = "grouped"  # folded into a digest (refers_to: the digest's delivery id)
    SILENCED = "silenced"  # a silence matched (refers_to: the silence id)
    MERGED = "merged"  # another subscription delivers it to this channel (its delivery id)
    FOLDED = "folded"  # an alert transition that does not notify (refers_to: the alert id)

    @property
    def routed(self) -> bool:
        """A routing decision: final, nothing was or will be sent for it."""
        return self in _ROUTED


_ROUTED = frozenset(
    {
        DeliveryStatus.SUPPRESSED,
        DeliveryStatus.GROUPED,
        DeliveryStatus.SILENCED,
        DeliveryStatus.MERGED,
        DeliveryStatus.FOLDED,
    }
)


def delivery_id(event_id: str, subscription: str, channel: str) -> str:
    """Stable id of one (event, subscription, channel); sent as ``webhook-id``."""
    digest = hashlib.sha256(f"{event_id}\x00{subscription}\x00{channel}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


@dataclass(slots=True)  # not frozen: one per attempt, and frozen inits cost 4x
class Attempt:
    number: int
    at: float
    duration: float
    outcome: str
    status: int | None = None
    error: str | None = None
    response: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "at": self.at,
            "duration": self.duration,
            "outcome": self.outcome,
            "status": self.status,
            "error": self.error,
            "response": self.response,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        return cls(**data)


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
    refers_to: str | None = None
    replay_of: str | None = None  # a replay: the delivery id it replays
    payload: str | None = None  # failed or skipped: the envelope, for a resend

    def to_dict(self) -> dict[str, Any]:
        # Written by hand: dataclasses.asdict deep-copies and was a visible
        # cost on the worker's hot path.
        return {
            "id": self.id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "team_id": self.team_id,
            "subscription": self.subscription,
            "channel": self.channel,
            "channel_type": self.channel_type,
            "status": self.status.value,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "next_attempt_at": self.next_attempt_at,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "reason": self.reason,
            "history": [a.to_dict() for a in self.history],
            "refers_to": self.refers_to,
            "replay_of": self.replay_of,
            "payload": self.payload,
        }

    def to_json(self) -> bytes:
        """The stored form: one JSON document, attempts included (``to_dict()``'s shape).

        orjson serializes the dataclasses itself, without ``to_dict()``'s copies.
        """
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeliveryRecord:
        data = orjson.loads(raw)
        data["status"] = DeliveryStatus(data["status"])
        data["history"] = [Attempt.from_dict(a) for a in data.get("history") or ()]
        if not _RECORD_FIELDS.issuperset(data):
            # written by a newer version (a rolling upgrade): keep what this one knows
            data = {name: value for name, value in data.items() if name in _RECORD_FIELDS}
        return cls(**data)


_RECORD_FIELDS = frozenset(DeliveryRecord.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class ChannelState:
    disabled: bool = False
    reason: str | None = None
    at: float | None = None
    last_outcome: str | None = None
    last_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "disabled": self.disabled,
            "reason": self.reason,
            "at": self.at,
            "last_outcome": self.last_outcome,
            "last_at": self.last_at,
        }


def note_duplicate(stored: DeliveryRecord, entry_id: str, at: float) -> DeliveryRecord:
    """A copy of delivered ``stored`` noting that stream entry ``entry_id`` repeated it."""
    record = DeliveryRecord.from_json(stored.to_json())
    note = Attempt(
        number=record.attempts,
        at=at,
        duration=0.0,
        outcome=DUPLICATE,
        response=f"stream entry {entry_id} repeated this event; delivered already, not sent again",
    )
    notes = [i for i, item in enumerate(record.history) if item.outcome == DUPLICATE]
    for index in reversed(notes[: max(0, len(notes) + 1 - _DUPLICATE_NOTES)]):
        del record.history[index]
    record.history.append(note)
    record.updated_at = at
    return record


def round_start(record: DeliveryRecord) -> float:
    """When the current round of attempts began: the latest resend, else the first try."""
    resent = [item.at for item in record.history if item.outcome == RESEND]
    return max([record.created_at, *resent])


class DeliveryStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, ttl: float = 7 * 86400) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = int(ttl)

    # -- reading -------------------------------------------------------------

    async def get(self, record_id: str, *, history: bool = True) -> DeliveryRecord | None:
        async with translated("read delivery"):
            raw = await self.redis.get(self.keys.delivery(record_id))
        if not raw:
            return None
        record = DeliveryRecord.from_json(raw)
        if not history:
            record.history = []
        return record

    async def current(self, ids: Sequence[str]) -> dict[str, DeliveryRecord]:
        """The stored records of ``ids`` that exist (one MGET), by id."""
        if not ids:
            return {}
        # Once per read batch on the worker's hot path: keys by concatenation,
        # errors through the plain context manager (both measurably cheaper).
        head = self.keys.delivery("")
        with translate_errors("read deliveries"):
            found: list[bytes | str | None] = await self.redis.mget([head + i for i in ids])
        return {
            record_id: DeliveryRecord.from_json(raw)
            for record_id, raw in zip(ids, found, strict=True)
            if raw
        }

    async def query(
        self,
        *,
        event_id: str | None = None,
        status: str | None = None,
        channel: str | None = None,
        subscription: str | None = None,
        teams: Collection[str] | None = None,
        since: float | None = None,
        limit: int = 50,
        history: bool = False,
        scan_limit: int = 200_000,
    ) -> list[DeliveryRecord]:
        """Up to ``limit`` records matching every filter given, newest first.

        ``since`` is a unix time; ``teams`` keeps records of those teams;
        ``history`` keeps the attempts. Without ``event_id`` the index is
        walked newest first, page by page, until ``limit`` records match or
        ``scan_limit`` records were looked at, so a rare status, channel or
        team is found however many other records are newer.
        """

        def wanted(record: DeliveryRecord) -> bool:
            return (
                (status is None or record.status == status)
                and (channel is None or record.channel == channel)
                and (subscription is None or record.subscription == subscription)
                and (teams is None or record.team_id in teams)
                and (since is None or record.updated_at >= since)
            )

        async with translated("query deliveries"):
            if event_id is not None:
                members: Any = await self.redis.smembers(self.keys.event_deliveries(event_id))
                records = await self._load([reply_text(i) for i in members], history)
                out = [r for r in records if wanted(r)]
                out.sort(key=lambda found: found.updated_at, reverse=True)
                return out[:limit]
            filtered = any(given is not None for given in (status, channel, subscription, teams))
            out = []
            page = _QUERY_PAGE if filtered else limit
            async with contextlib.aclosing(self._walk(since, page, scan_limit, history)) as walk:
                async for batch in walk:
                    out += [r for r in batch if wanted(r)]
                    if len(out) >= limit:
                        break
        out.sort(key=lambda found: found.updated_at, reverse=True)
        return out[:limit]

    async def latest_per_channel(
        self, channels: Collection[str], *, scan_limit: int = 20_000
    ) -> dict[str, DeliveryRecord]:
        """The newest record of each of ``channels`` among the latest ``scan_limit``."""
        wanted = set(channels)
        latest: dict[str, DeliveryRecord] = {}
        async with translated("query deliveries"):
            walk = self._walk(None, _QUERY_PAGE, scan_limit, False)
            async with contextlib.aclosing(walk):
                async for batch in walk:
                    for record in batch:
                        if record.channel in wanted and record.channel not in latest:
                            latest[record.channel] = record
                    if len(latest) == len(wanted):
                        break
        return latest

    async def _walk(
        self, since: float | None, page: int, scan_limit: int, history: bool
    ) -> AsyncGenerator[list[DeliveryRecord], None]:
        """Records newest first, a page per round trip, at most ``scan_limit`` looked at."""
        low: Any = since if since is not None else "-inf"
        high: Any = "+inf"
        skip = 0  # records at score ``high`` already looked at
        seen: set[str] = set()
        while len(seen) < scan_limit:
            found: Any = await self.redis.zrevrangebyscore(
                self.keys.deliveries_index, high, low, start=skip, num=page, withscores=True
            )
            fresh = [i for i in (reply_text(i) for i, _ in found) if i not in seen]
            seen.update(fresh)
            yield await self._load(fresh, history)
            if len(found) < page:
                return
            # Next page: from the last score (inclusive), past the records at
            # that score already looked at, so ties are never lost.
            last = found[-1][1]
            same = sum(1 for _, score in found if score == last)
            skip = skip + same if last == high else same
            high = last

    async def _load(self, ids: Sequence[str], history: bool) -> list[DeliveryRecord]:
        if not ids:
            return []
        found: list[bytes | str | None] = await self.redis.mget(
            [self.keys.delivery(i) for i in ids]
        )
        out = []
        for raw in found:
            if not raw:
                continue  # expired
            record = DeliveryRecord.from_json(raw)
            if not history:
                record.history = []
            out.append(record)
        return out

    async def channel_states(self) -> dict[str, ChannelState]:
        async with translated("read channel states"):
            raw: Any = await self.redis.hgetall(self.keys.channel_state)
        return {reply_text(k): ChannelState(**orjson.loads(v)) for k, v in raw.items()}

    async def enable_channel(self, name: str) -> None:
        """Clear a channel's disabled flag (after the operator fixed it)."""
        async with translated("enable channel"):
            await self.redis.hdel(self.keys.channel_state, name)

    async def disable_channel(self, name: str, state: ChannelState) -> None:
        """Mark a channel disabled (by an operator); workers skip it from their next refresh."""
        async with translated("disable channel"):
            await self.redis.hset(self.keys.channel_state, name, orjson.dumps(state.to_dict()))

    async def prune_index(self, now: float | None = None) -> int:
        """Drop index entries of records past their TTL."""
        cutoff = (now or time.time()) - self.ttl
        async with translated("prune delivery index"):
            return int(
                await self.redis.zremrangebyscore(self.keys.deliveries_index, "-inf", cutoff)
            )
