"""Replay: a range of the durable stream dispatched again, as new deliveries.

``eventbus replay`` reads the stream (XRANGE on ``Keys.events``) between two
times or two entry ids, matches each event against the subscriptions as the
worker does (or one named subscription, or the subscriptions of one named
channel, of one team) and queues one delivery per (event, subscription,
channel). Only what the stream still holds can be replayed: the daemon trims
acknowledged entries older than ``consumer.retention_min_age``.

How a replayed delivery is executed: it is queued as a due retry
(``consumers.store.requeue``) with its own delivery id, so any worker claims
it and sends it through the channel's rate limits, with the normal records,
retry schedule and dead ends (``Dispatcher.retry_work``). Its record is
written when it is queued (``retrying``, due now, reason "replay <run>"),
so ``eventbus deliveries`` shows it at once.

Its id is new (``replay_delivery_id``: a digest of the original delivery id
and the run id) and sent as ``webhook-id``: a receiver that deduplicates sees
a new message, which is what a replay asks for. Its record names the
original (``replay_of``: the delivery id the event got first, whether or not
that record still exists). Routing is not applied again: a replay is sent
even if the event was silenced, merged, within a cooldown or grouped the
first time (the operator asked for exactly these events); a grouping
subscription gets the events one by one, not a digest.

Running the same command twice queues the range twice, under two run ids.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import translated
from eventbus.envelope import Event, decode_entry
from eventbus.errors import EnvelopeError
from eventbus.keys import Keys, qualified
from eventbus.settings import Settings, SubscriptionSpec
from eventbus.subscriptions import Matcher

from .store.records import DeliveryStatus, delivery_id
from .store.requeue import stage
from .store.retries import RetryJob
from .work import new_record

__all__ = ["Planned", "Replay", "ReplayReport", "check_stream_id", "replay_delivery_id"]

_PAGE: Final = 500
_STREAM_ID: Final = re.compile(r"\d{1,20}(-\d{1,20})?")


def replay_delivery_id(original: str, run_id: str) -> str:
    """The id of the replay of delivery ``original`` in run ``run_id`` (a new ``webhook-id``)."""
    digest = hashlib.sha256(f"{original}\x00replay\x00{run_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def check_stream_id(text: str, what: str) -> str:
    """``text`` if it is a stream entry id (``1732370000000-0`` or milliseconds)."""
    if not _STREAM_ID.fullmatch(text):
        raise ValueError(
            f"{what}: {text[:40]!r} is not a stream entry id; "
            "use MILLISECONDS or MILLISECONDS-SEQUENCE as XRANGE shows them, e.g. 1732370000000-0"
        )
    return text


@dataclass(frozen=True, slots=True)
class Planned:
    """One delivery a replay queues (or, dry, would queue)."""

    entry_id: str
    event: Event
    subscription: str
    channel: str
    delivery_id: str
    replay_of: str
    payload: bytes = field(repr=False, default=b"")  # what retries send (``decode_entry``)


@dataclass(slots=True)
class ReplayReport:
    run_id: str
    entries: int = 0  # stream entries read in the range
    matched: int = 0  # events that matched at least one wanted subscription
    queued: int = 0  # deliveries queued (or, dry, planned)
    invalid: int = 0  # entries that are no valid envelope (skipped)
    first_retained: str | None = None  # the oldest entry the stream still holds


class Replay:
    """One replay run: what it selects, and the Redis it reads and queues on."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        *,
        subscription: str | None = None,
        channel: str | None = None,
        team: str | None = None,
        run_id: str | None = None,
        partition: int = 0,
    ) -> None:
        self.redis = redis
        self.settings = settings
        # One partition's stream (broker.partitions); its records and retries go there too.
        self.partition = partition
        self.keys = Keys(settings.broker.prefix).partition(partition)
        self.ttl = int(settings.consumer.record_ttl)
        self.team = team
        self.run_id = run_id or f"rp{secrets.token_hex(6)}"
        self.kinds = {spec.name: spec.kind for spec in settings.channels}
        subs = list(settings.subscriptions)
        if subscription is not None:
            subs = [s for s in subs if s.name == subscription]
            if not subs:
                names = ", ".join(s.name for s in settings.subscriptions) or "none"
                raise ValueError(
                    f"--subscription: no subscription {subscription!r} (configured: {names})"
                )
        if channel is not None and channel not in self.kinds:
            names = ", ".join(self.kinds) or "none"
            raise ValueError(f"--channel: no channel {channel!r} (configured: {names})")
        self.channel = channel
        self.matcher = Matcher(subs, settings.catalog.build())

    async def bounds(self, low: str, high: str) -> tuple[str, str] | None:
        """The first and last entry ids within [low, high]; ``None`` when there are none."""
        async with translated("read the stream"):
            first: Any = await self.redis.xrange(self.keys.events, min=low, max=high, count=1)
            last: Any = await self.redis.xrevrange(self.keys.events, max=high, min=low, count=1)
        if not first or not last:
            return None
        return _text(first[0][0]), _text(last[0][0])

    async def first_retained(self) -> str | None:
        async with translated("read the stream"):
            first: Any = await self.redis.xrange(self.keys.events, count=1)
        return _text(first[0][0]) if first else None

    async def pages(self, low: str, high: str) -> AsyncIterator[list[tuple[str, bytes | None]]]:
        """The range's entries (id, payload), a page per round trip, oldest first."""
        start = low
        while True:
            async with translated("read the stream"):
                found: Any = await self.redis.xrange(
                    self.keys.events, min=start, max=high, count=_PAGE
                )
            if not found:
                return
            part = self.partition  # ids as the worker reads them (eventbus.keys.qualified)
            yield [(qualified(_text(i), part), _payload(fields)) for i, fields in found]
            if len(found) < _PAGE:
                return
            start = "(" + _text(found[-1][0])

    def plan(self, entry_id: str, raw: bytes | None, report: ReplayReport) -> list[Planned]:
        """The deliveries of one entry (none: invalid, another team, nothing matches)."""
        report.entries += 1
        if raw is None:
            report.invalid += 1
            return []
        try:
            event, kept = decode_entry(raw, self.settings.envelope, entry_id=entry_id)
        except EnvelopeError:
            report.invalid += 1
            return []
        if self.team is not None and event.team_id != self.team:
            return []
        matched, _filtered = self.matcher.select(event)
        out = [
            Planned(entry_id, event, sub.name, name, *self._ids(event, sub, name), kept)
            for sub in matched
            for name in dict.fromkeys(sub.channels)
            if self.channel is None or name == self.channel
        ]
        report.matched += bool(out)
        report.queued += len(out)
        return out

    def _ids(self, event: Event, sub: SubscriptionSpec, channel: str) -> tuple[str, str]:
        original = delivery_id(event.id, sub.name, channel)
        return replay_delivery_id(original, self.run_id), original

    async def queue(self, planned: Sequence[Planned], now: float | None = None) -> None:
        """Queue ``planned`` as retries due now, with their records, in one transaction."""
        if not planned:
            return
        now = time.time() if now is None else now
        async with translated("queue replays"), self.redis.pipeline(transaction=True) as pipe:
            for item in planned:
                record = new_record(
                    item.event,
                    item.subscription,
                    item.channel,
                    self.kinds.get(item.channel, ""),
                    DeliveryStatus.RETRYING,
                    0,
                    now,
                    item.delivery_id,
                )
                record.replay_of, record.next_attempt_at = item.replay_of, now
                record.reason, record.updated_at = f"replay {self.run_id}", now
                job = RetryJob(
                    item.delivery_id,
                    item.payload,
                    item.subscription,
                    item.channel,
                    0,
                    now,
                    replay_of=item.replay_of,
                )
                stage(pipe, self.keys, self.ttl, record, job, now)
            await pipe.execute()


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _payload(fields: Any) -> bytes | None:
    raw = fields.get(b"payload") or fields.get("payload")
    if raw is None:
        return None
    return raw if isinstance(raw, bytes) else str(raw).encode()
