"""From a stream entry (or a due retry) to a settlement of what to record.

``Dispatcher`` decodes, matches, renders and sends; it writes nothing. Work
happens in two steps: ``entry_work``/``retry_work`` decode and match (plain
code, no waiting), then ``send`` delivers to every target concurrently. The
result is a ``Settlement`` that the worker commits in one atomic step together
with the XACK, so an entry is acknowledged only with its outcome recorded.
Nothing here lets bad input escape: invalid entries become dead letters,
unknown channels and template errors become failed records.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from eventbus.brokers.redis_streams import StreamEntry
from eventbus.durations import format_duration
from eventbus.envelope import EnvelopeLimits, Event, decode, decode_entry
from eventbus.errors import EnvelopeError, PermanentDeliveryError
from eventbus.logs import HotLogger
from eventbus.settings import Settings, SubscriptionSpec
from eventbus.subscriptions import Matcher

from .breaker import Breaker
from .channels.base import Channel, Message, OutcomeClass, SendResult
from .deadline import Deadline
from .digests import digest_message, is_digest, lead_event
from .metrics import Metrics
from .rendering import render
from .routing import Router
from .store import (
    ChannelState,
    DeadLetterOrder,
    DeliveryRecord,
    DeliveryStatus,
    RetryJob,
    RetryPolicy,
    Settlement,
    delivery_id,
    note_duplicate,
)
from .store.records import round_start
from .work import Target, Work, add_attempt, new_record

__all__ = ["Dispatcher", "Target", "Work", "add_attempt", "new_record"]

log = structlog.get_logger("eventbus.delivery")
# The line per delivery: a logger assembled once, not on every call.
_delivery_log = HotLogger("eventbus.delivery")


_LOG_EVENT = {
    DeliveryStatus.DELIVERED: "delivery.sent",
    DeliveryStatus.RETRYING: "delivery.retrying",
    DeliveryStatus.FAILED: "delivery.failed",
    DeliveryStatus.SKIPPED: "delivery.skipped",
    DeliveryStatus.SUPPRESSED: "delivery.suppressed",
    DeliveryStatus.GROUPED: "delivery.grouped",
    DeliveryStatus.SILENCED: "delivery.silenced",
    DeliveryStatus.MERGED: "delivery.merged",
    DeliveryStatus.FOLDED: "delivery.folded",
}


# Records that keep their envelope, so an operator can resend them later.
_KEEPS_PAYLOAD = frozenset({DeliveryStatus.FAILED, DeliveryStatus.SKIPPED})


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        channels: Mapping[str, Channel],
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        router: Router | None = None,
        breaker: Breaker | None = None,
    ) -> None:
        self.clock = clock
        self.breaker = breaker or Breaker(settings, clock=clock)
        self.router = router or Router(settings)
        self.metrics = metrics or Metrics()
        if self.router.metrics is None:  # routing counts what it settles in our metrics
            self.router.metrics = self.metrics
        self.channel_states: dict[str, ChannelState] = {}
        self.reconfigure(settings, channels)

    def reconfigure(self, settings: Settings, channels: Mapping[str, Channel]) -> None:
        """Swap in new subscriptions and channels (config reload); in-flight work keeps its own."""
        self.settings = settings
        self.channels = dict(channels)
        self.specs = {c.name: c for c in settings.channels}
        self.subscriptions = {s.name: s for s in settings.subscriptions}
        self.matcher = Matcher(settings.subscriptions, settings.catalog.build())
        self.limits: EnvelopeLimits = settings.envelope
        # A successful delivery logs at debug unless asked for (logging.deliveries).
        self.sent_level = logging.INFO if settings.logging.deliveries == "all" else logging.DEBUG
        self.router.reconfigure(settings)
        self.breaker.reconfigure(settings)
        consumer = settings.consumer
        self.default_policy = RetryPolicy(
            consumer.retry_schedule, consumer.retry_jitter, consumer.retry_after_max
        )

    # -- entry points ----------------------------------------------------------

    def entry_work(self, entry: StreamEntry) -> Work:
        """Decode and match one stream entry; an invalid one becomes a dead letter."""
        settlement = Settlement(ack=entry.id)
        payload = entry.payload
        if payload is None:
            settlement.dead_letter = DeadLetterOrder(
                entry, "no_payload", "entry has no 'payload' field"
            )
            return Work(settlement)
        try:
            # An envelope without id/timestamp gets stable ones from the entry id,
            # and the payload kept for retries carries them.
            event, payload = decode_entry(payload, self.limits, entry_id=entry.id)
        except EnvelopeError as exc:
            settlement.dead_letter = DeadLetterOrder(entry, "invalid_envelope", str(exc))
            return Work(settlement)
        now = self.clock()
        matched, filtered = self.matcher.select(event)
        for sub, reason in filtered:
            self.metrics.filtered(sub.name, reason)
        targets = [
            Target(sub, name, delivery_id(event.id, sub.name, name), 0, now)
            for sub in matched
            for name in dict.fromkeys(sub.channels)
        ]
        # Routing (silences, merging, cooldowns, grouping) comes once the
        # pipeline has screened the batch: ``Router.decide``.
        return Work(settlement, event, payload, targets)

    def retry_work(self, job: RetryJob) -> Work:
        """The next attempt of a due retry."""
        settlement = Settlement()
        sub = self.subscriptions.get(job.subscription)
        try:
            payload, limits = job.payload, self.limits
            event = lead_event(payload, limits) if is_digest(payload) else decode(payload, limits)
        except EnvelopeError as exc:  # cannot happen for a payload we decoded before
            settlement.retries_done.append(job.delivery_id)
            log.error("retry.undecodable", delivery_id=job.delivery_id, error=str(exc))
            return Work(settlement)
        if sub is None:
            record = self._record(
                event,
                job.subscription,
                job.channel,
                DeliveryStatus.FAILED,
                job.attempts,
                job.created_at,
                job.delivery_id,  # a digest's is not its first event's
            )
            record.history, record.replay_of = list(job.history), job.replay_of
            record.reason = "subscription removed from the configuration"
            settlement.records.append(record)
            settlement.retries_done.append(job.delivery_id)
            return Work(settlement)
        target = Target(
            sub, job.channel, job.delivery_id, job.attempts, job.created_at, job.history, True
        )
        target.replay_of = job.replay_of  # a replay keeps its own id (consumers.replay)
        return Work(settlement, event, job.payload, [target])

    def screen(self, work: Work, stored: Mapping[str, DeliveryRecord | None]) -> None:
        """Drop targets whose ``stored`` record is delivered (an entry notes a duplicate).

        A routed record (grouped, suppressed, silenced, merged) is final too:
        the target is dropped without a note. Any other state (failed,
        retrying, skipped) is not done: the target is sent, continuing that
        record's attempts and history."""
        keep = []
        for target in work.targets:
            record = stored.get(target.id)
            if record is None:
                keep.append(target)
            elif record.status is DeliveryStatus.DELIVERED:
                self._duplicate(work, target, record)
            elif record.status.routed:
                pass  # routed already (grouped, suppressed ...): that decision stands
            else:
                target.attempts, target.created_at = record.attempts, record.created_at
                target.history = tuple(record.history)
                # Its scheduled retry, if any, goes once this attempt settles it.
                target.retry = target.retry or record.status is DeliveryStatus.RETRYING
                keep.append(target)
        work.targets = keep

    def _duplicate(self, work: Work, target: Target, record: DeliveryRecord) -> None:
        settlement = work.settlement
        if settlement.ack is None:  # a due retry of a delivery done meanwhile
            settlement.retries_done.append(target.id)
            return
        settlement.duplicates.append(note_duplicate(record, settlement.ack, self.clock()))
        bound = {"event_id": record.event_id, "delivery_id": record.id, "channel": record.channel}
        _delivery_log.get().info("delivery.duplicate", **bound, entry_id=settlement.ack)

    async def send(self, work: Work) -> Settlement:
        """Deliver to every target of ``work`` concurrently; returns its settlement."""
        settlement, event, targets = work.settlement, work.event, work.targets
        if event is None or not targets:
            return settlement
        if len(targets) == 1:
            settlement.records.append(
                await self._deliver(event, work.payload, targets[0], settlement)
            )
        else:
            settlement.records += await asyncio.gather(
                *(self._deliver(event, work.payload, t, settlement) for t in targets)
            )
        for record in settlement.records:  # what a resend needs (consumers.resend)
            if record.status in _KEEPS_PAYLOAD:
                record.payload = work.payload.decode()
        return settlement

    # -- delivering -----------------------------------------------------------------

    async def _deliver(
        self, event: Event, payload: bytes, target: Target, settlement: Settlement
    ) -> DeliveryRecord:
        sub, name = target.subscription, target.channel_name
        status, attempts, created = DeliveryStatus.FAILED, target.attempts, target.created_at
        record = self._record(event, sub.name, name, status, attempts, created, target.id)
        record.history, record.replay_of = list(target.history), target.replay_of
        # The context of this delivery's log lines (a dict, not log.bind():
        # one summary line per delivery does not need a bound logger).
        bound: dict[str, Any] = {
            "event_id": event.id,
            "delivery_id": record.id,
            "channel": name,
            "subscription": sub.name,
            "event_type": event.event,
        }
        channel = self.channels.get(name)
        spec = self.specs.get(name)
        if channel is None or spec is None:
            record.reason = f"channel {name!r} is not configured"
            return self._finish(bound, record, settlement, target)
        record.channel_type = channel.type
        state = self.channel_states.get(name)
        if not spec.enabled or (state is not None and state.disabled):
            record.status = DeliveryStatus.SKIPPED
            record.reason = (
                "channel disabled in the configuration"
                if not spec.enabled
                else f"channel disabled: {state.reason if state else ''}"
            )
            return self._finish(bound, record, settlement, target)
        if self.breaker.blocked(name) and (wait := await self.breaker.admit(name)) is not None:
            held = SendResult(OutcomeClass.RATE_LIMITED, retry_after=wait)  # no attempt
            return self._rate_limited(
                bound, record, held, payload, settlement, target, "circuit open"
            )
        try:
            message: Message
            if is_digest(payload):
                message = digest_message(payload, sub, record.id, self.limits)
            else:
                # the alert stage's notice (consumers.routing.alerts), which
                # templates and the default text both read
                message = render(event, sub, record.id, alert=target.alert)
        except PermanentDeliveryError as exc:
            result = SendResult(OutcomeClass.PERMANENT, error=f"template error: {exc}")
        else:
            result = await self._send(channel, spec.timeout, message)
            self.breaker.observe(name, result)
        self.metrics.attempted(channel.type, result.outcome, result.latency, name)
        if result.outcome is OutcomeClass.RATE_LIMITED:
            return self._rate_limited(bound, record, result, payload, settlement, target)
        add_attempt(record, result, self.clock())
        if result.outcome is OutcomeClass.RETRYABLE:
            self._retry_or_give_up(record, result, payload, settlement, sub)
        elif result.outcome is not OutcomeClass.DELIVERED:
            self._failed(bound, record, result, settlement)
        return self._finish(bound, record, settlement, target, result)

    def _retry_or_give_up(
        self,
        record: DeliveryRecord,
        result: SendResult,
        payload: bytes,
        settlement: Settlement,
        sub: SubscriptionSpec,
    ) -> None:
        delay = self._policy(sub).delay(record.attempts, result.retry_after)
        if delay is None:
            record.reason = f"gave up after {record.attempts} attempts"
            return
        record.status = DeliveryStatus.RETRYING
        record.next_attempt_at = self.clock() + delay
        settlement.retries.append((self._job(record, payload), record.next_attempt_at))
        self.metrics.retries_scheduled.inc()

    def _failed(
        self,
        bound: dict[str, Any],
        record: DeliveryRecord,
        result: SendResult,
        settlement: Settlement,
    ) -> None:
        record.reason = result.error or "permanent failure"
        if result.disable_channel:
            disabled = ChannelState(
                True, f"{result.error or 'disabled'} (delivery {record.id})", self.clock()
            )
            self.channel_states[record.channel] = disabled
            settlement.disable.append((record.channel, disabled))
            self.metrics.channels_disabled.inc()
            log.warning("channel.disabled", **bound, reason=result.error)

    async def _send(
        self, channel: Channel, channel_timeout: float | None, message: Any
    ) -> SendResult:
        limit = channel_timeout or self.settings.consumer.delivery_timeout
        start = time.perf_counter()
        try:
            # A little more than the channel's own timeout: the channel should
            # answer first with a precise error; this only catches hangs.
            with Deadline(limit + 1.0) as deadline:
                try:
                    result: SendResult = await channel.send(message)
                    return result
                except asyncio.CancelledError:
                    if deadline.expired():
                        raise TimeoutError from None
                    raise
        except TimeoutError:
            error = f"timed out after {limit:g}s"
        except Exception as exc:  # a channel bug must not stop the loop
            error = f"channel raised {type(exc).__name__}"
            log.error("channel.crashed", channel=channel.name, error_type=type(exc).__name__)
        return SendResult(OutcomeClass.RETRYABLE, latency=time.perf_counter() - start, error=error)

    def _rate_limited(
        self,
        bound: dict[str, Any],
        record: DeliveryRecord,
        result: SendResult,
        payload: bytes,
        settlement: Settlement,
        target: Target,
        why: str = "rate limited",
    ) -> DeliveryRecord:
        # Not a failed attempt (rate limited, or the channel's circuit is open):
        # reschedule without counting it, for as long as the subscription's
        # retry schedule would have kept trying.
        wait = min(max(result.retry_after or 1.0, 0.5), self.settings.consumer.retry_after_max)
        now = self.clock()
        patience, started = self._policy(target.subscription).patience, round_start(record)
        if now + wait > started + patience:  # since the first try, or the latest resend
            waited, most = format_duration(now - started), format_duration(patience)
            record.reason = (
                f"still {why} {waited} after the first try; gave up (a delivery "
                f"waits at most {most}: its retry schedule, or consumer.retry_after_max if longer)"
            )
            return self._finish(bound, record, settlement, target, result)
        record.status = DeliveryStatus.RETRYING
        record.next_attempt_at = now + wait
        record.reason = why
        settlement.retries.append((self._job(record, payload), record.next_attempt_at))
        return self._finish(bound, record, settlement, target, result)

    def _finish(
        self,
        bound: dict[str, Any],
        record: DeliveryRecord,
        settlement: Settlement,
        target: Target,
        result: SendResult | None = None,
    ) -> DeliveryRecord:
        record.updated_at = self.clock()
        status = record.status
        if status is not DeliveryStatus.RETRYING and target.retry:
            settlement.retries_done.append(record.id)
        if status is DeliveryStatus.FAILED:
            self.metrics.failed(record.channel_type, record.channel)
        level = (
            self.sent_level
            if status is DeliveryStatus.DELIVERED
            else (logging.WARNING if status is DeliveryStatus.FAILED else logging.INFO)
        )
        if not _delivery_log.enabled(level):
            return record  # filtered out: no fields built, no line rendered
        fields: dict[str, Any] = {"outcome": record.status, "attempt": record.attempts}
        if result is not None:
            fields.update(status=result.status, latency_ms=round(result.latency * 1000, 1))
            if result.error:
                fields["error"] = result.error
        if record.reason and record.status is not DeliveryStatus.DELIVERED:
            fields["reason"] = record.reason
        if record.next_attempt_at is not None and record.status is DeliveryStatus.RETRYING:
            fields["next_attempt_in_s"] = round(record.next_attempt_at - self.clock(), 1)
        _delivery_log.get().log(level, _LOG_EVENT[status], **bound, **fields)
        return record

    # -- helpers ------------------------------------------------------------------------

    def _policy(self, sub: SubscriptionSpec) -> RetryPolicy:
        if sub.retry is None:
            return self.default_policy
        consumer = self.settings.consumer
        return RetryPolicy(sub.retry, consumer.retry_jitter, consumer.retry_after_max)

    def _record(
        self,
        event: Event,
        subscription: str,
        channel: str,
        status: DeliveryStatus,
        attempts: int,
        created_at: float,
        rid: str | None = None,
    ) -> DeliveryRecord:
        spec = self.specs.get(channel)
        kind = spec.kind if spec else ""
        return new_record(event, subscription, channel, kind, status, attempts, created_at, rid)

    @staticmethod
    def _job(record: DeliveryRecord, payload: bytes) -> RetryJob:
        return RetryJob(
            delivery_id=record.id,
            payload=payload,
            subscription=record.subscription,
            channel=record.channel,
            attempts=record.attempts,
            created_at=record.created_at,
            history=tuple(record.history),
            replay_of=record.replay_of,
        )
