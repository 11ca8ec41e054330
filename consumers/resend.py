"""Resend: one more attempt of an existing delivery, asked for by an operator.

Shared by ``eventbus deliveries resend`` and ``POST /v1/deliveries/{id}/resend``.
A resend keeps the delivery id (so receivers see the same ``webhook-id`` and
can deduplicate) and its record: the record gains a history item with
outcome ``resend`` (who asked, when), then the attempt itself. It is not
sent here: it becomes a retry due now (``consumers.store.requeue``), so a
worker sends it through the channel's rate limits, a bulk resend is paced
like normal delivery, and the outcome is recorded as for any retry. The
delivery's retry schedule continues where it stopped: one that used up its
retries gets this one attempt (resend again if it fails); the patience for
being rate limited counts from the resend, not from the first try.

What each state does:

- ``failed``, ``skipped``: scheduled. Their record keeps the envelope
  (``DeliveryRecord.payload``) for as long as the record lives
  (``consumer.record_ttl``).
- ``retrying``: its scheduled retry is made due now (nothing else changes);
  refused while a worker holds it (claimed, being attempted).
- ``delivered``: refused unless ``force``; then the envelope comes from the
  stream entry, which is there only within ``consumer.retention_min_age``
  of being acknowledged: once trimmed, the resend is refused and says so.
- routed (``suppressed``, ``grouped``, ``silenced``, ``merged``): refused,
  nothing was sent on purpose (``refers_to`` names what was).

A record changed by a worker while a resend was being prepared is read
again (WATCH); a team outside ``teams`` is "not found", like an unknown id.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from eventbus.brokers.redis_streams import translated
from eventbus.envelope import DEFAULT_LIMITS, decode_entry
from eventbus.errors import EnvelopeError
from eventbus.keys import Keys, qualified

from .store.records import RESEND, Attempt, DeliveryRecord, DeliveryStatus
from .store.requeue import stage
from .store.retries import RetryJob

__all__ = ["NOT_FOUND", "Resend", "Resent"]

NOT_FOUND: Final = "not found (an unknown id, a record past consumer.record_ttl, or another team's)"
# How far around a record's first try the stream is searched for its entry.
_SEARCH_BEFORE: Final = 3600.0
_SEARCH_AFTER: Final = 60.0
_SEARCH_PAGE: Final = 500
_SEARCH_MOST: Final = 20_000


@dataclass(frozen=True, slots=True)
class Resent:
    """What a resend request did: ``scheduled``, or why not (``note``)."""

    delivery_id: str
    scheduled: bool
    note: str
    found: bool = True  # False: no such delivery (for the caller, "404")

    def to_dict(self) -> dict[str, Any]:
        return {"delivery_id": self.delivery_id, "scheduled": self.scheduled, "note": self.note}


class Resend:
    """Resends on one Redis, checked against the configured subscriptions and channels."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        ttl: float,
        *,
        subscriptions: Collection[str] | None = None,
        channels: Collection[str] | None = None,
        partitions: int = 1,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = int(ttl)
        self.subscriptions = None if subscriptions is None else frozenset(subscriptions)
        self.channels = None if channels is None else frozenset(channels)
        self.partitions = partitions  # broker.partitions: a record lives in one of them

    async def _located(self, record_id: str) -> Resend:
        """The resends of the partition holding ``record_id`` (its retry goes there too)."""
        if self.partitions == 1:
            return self
        for keys in self.keys.partitions(self.partitions):
            async with translated("find delivery"):
                if await self.redis.exists(keys.delivery(record_id)):
                    here = Resend(self.redis, keys, self.ttl)
                    here.subscriptions, here.channels = self.subscriptions, self.channels
                    return here
        return self

    async def resend(
        self,
        record_id: str,
        *,
        force: bool = False,
        teams: Collection[str] | None = None,
        by: str = "an operator",
        now: float | None = None,
    ) -> Resent:
        """Schedule one more attempt of delivery ``record_id`` (see the module docstring)."""
        if self.partitions > 1:
            here = await self._located(record_id)
            return await here.resend(record_id, force=force, teams=teams, by=by, now=now)
        key = self.keys.delivery(record_id)
        for _ in range(5):  # a worker committing this record meanwhile: read it again
            try:
                async with translated("resend"), self.redis.pipeline(transaction=True) as pipe:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    record = DeliveryRecord.from_json(raw) if raw else None
                    if record is None or (teams is not None and record.team_id not in teams):
                        return Resent(record_id, False, NOT_FOUND, found=False)
                    return await self._resend(pipe, record, force, by, now or time.time())
            except WatchError:
                continue
        return Resent(record_id, False, "the record kept changing; try again")

    async def check(
        self, record_id: str, *, force: bool = False, teams: Collection[str] | None = None
    ) -> Resent:
        """What ``resend`` would do, changing nothing (``scheduled``: it would schedule it)."""
        if self.partitions > 1:
            return await (await self._located(record_id)).check(record_id, force=force, teams=teams)
        async with translated("read delivery"):
            raw = await self.redis.get(self.keys.delivery(record_id))
        record = DeliveryRecord.from_json(raw) if raw else None
        if record is None or (teams is not None and record.team_id not in teams):
            return Resent(record_id, False, NOT_FOUND, found=False)
        refusal = self._refusal(record, force)
        if refusal is not None:
            return Resent(record.id, False, refusal)
        if record.status is not DeliveryStatus.RETRYING and await self._payload(record) is None:
            return Resent(record.id, False, _GONE)
        return Resent(record.id, True, "would schedule")

    async def _resend(
        self, pipe: Any, record: DeliveryRecord, force: bool, by: str, now: float
    ) -> Resent:
        refusal = self._refusal(record, force)
        if refusal is not None:
            return Resent(record.id, False, refusal)
        due = await pipe.zscore(self.keys.retries, record.id)
        if record.status is DeliveryStatus.RETRYING and due is not None:
            if record.next_attempt_at is None or abs(due - record.next_attempt_at) > 0.001:
                # A claim moved it a lease ahead: a worker is attempting it right now.
                return Resent(record.id, False, "a worker is attempting it right now")
            pipe.multi()
            pipe.zadd(self.keys.retries, {record.id: now}, xx=True)
            await pipe.execute()
            return Resent(record.id, True, "its scheduled retry is due now")
        payload = await self._payload(record)
        if payload is None:
            return Resent(record.id, False, _GONE)
        record.history.append(
            Attempt(record.attempts, now, 0.0, RESEND, response=f"resend requested by {by}")
        )
        record.status, record.next_attempt_at, record.updated_at = DeliveryStatus.RETRYING, now, now
        record.reason, record.payload = f"resend requested by {by}", None
        job = RetryJob(
            record.id,
            payload,
            record.subscription,
            record.channel,
            record.attempts,
            record.created_at,
            tuple(record.history),
            record.replay_of,
        )
        pipe.multi()
        stage(pipe, self.keys, self.ttl, record, job, now)
        await pipe.execute()
        return Resent(record.id, True, "scheduled")

    def _refusal(self, record: DeliveryRecord, force: bool) -> str | None:
        status = record.status
        if status.routed:
            why = f" ({record.refers_to})" if record.refers_to else ""
            return f"{status.value}{why}: a routing decision, nothing was sent; nothing to resend"
        if status is DeliveryStatus.DELIVERED and not force:
            return "delivered already; use --force (HTTP: ?force=true) to send it again"
        if self.subscriptions is not None and record.subscription not in self.subscriptions:
            return f"subscription {record.subscription!r} is not configured any more"
        if self.channels is not None and record.channel not in self.channels:
            return f"channel {record.channel!r} is not configured any more"
        return None

    async def _payload(self, record: DeliveryRecord) -> bytes | None:
        """The envelope: kept on the record, in its retry job, or in the stream."""
        if record.payload is not None:
            return record.payload.encode()
        async with translated("read retry job"):
            kept: bytes | str | None = await self.redis.hget(
                self.keys.retry_job(record.id), "payload"
            )
        if kept:
            return kept.encode() if isinstance(kept, str) else kept
        return await self._from_stream(record.event_id, record.created_at)

    async def _from_stream(self, event_id: str, around: float) -> bytes | None:
        """The payload of event ``event_id`` from the stream near ``around`` (its first try)."""
        high: Any = int((around + _SEARCH_AFTER) * 1000)
        low = int((around - _SEARCH_BEFORE) * 1000)
        needle, looked = event_id.encode(), 0
        while looked < _SEARCH_MOST:
            async with translated("search the stream"):
                entries: Any = await self.redis.xrevrange(
                    self.keys.events, max=high, min=low, count=_SEARCH_PAGE
                )
            for entry_id, fields in entries:
                entry = qualified(_text(entry_id), self.keys.part)  # as the worker read it
                found = _event_payload(entry, fields, event_id, needle)
                if found is not None:
                    return found
            looked += len(entries)
            if len(entries) < _SEARCH_PAGE:
                return None
            high = "(" + _text(entries[-1][0])
        return None


_GONE: Final = (
    "its event is no longer available: the record does not keep it (only failed and "
    "skipped ones do) and the stream entry was trimmed (consumer.retention_min_age)"
)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _event_payload(
    entry_id: Any, fields: Mapping[Any, Any], event_id: str, needle: bytes
) -> bytes | None:
    raw = fields.get(b"payload") or fields.get("payload")
    if raw is None:
        return None
    data = raw if isinstance(raw, bytes) else raw.encode()
    try:
        # Cheap test first; an entry without an id gets one derived from the entry id.
        if needle not in data and orjson.loads(data).get("id"):
            return None
        event, payload = decode_entry(data, DEFAULT_LIMITS, entry_id=_text(entry_id))
    except (EnvelopeError, orjson.JSONDecodeError, AttributeError):
        return None
    return payload if event.id == event_id else None
