"""Work in flight: a decoded, matched entry or due retry and the deliveries it owes.

``Target`` is one (subscription, channel) of a ``Work``; routing (silences,
one delivery per channel, cooldown, grouping) removes targets and records
why, dispatch sends what is left. ``new_record`` and ``add_attempt`` build
the delivery records both write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from eventbus.envelope import Event
from eventbus.settings import SubscriptionSpec

from .channels.base import AlertNotice, OutcomeClass, SendResult
from .store import Attempt, DeliveryRecord, DeliveryStatus, Settlement, delivery_id

__all__ = ["Target", "Work", "add_attempt", "new_record"]


@dataclass(slots=True)  # not frozen: one per delivery, and frozen inits cost 4x
class Target:
    """One (subscription, channel) of a work: its delivery and the attempts so far."""

    subscription: SubscriptionSpec
    channel_name: str
    id: str  # the delivery id
    attempts: int
    created_at: float
    history: tuple[Attempt, ...] = ()
    retry: bool = False  # a due retry: its schedule entry goes once settled
    alert: AlertNotice | None = None  # the alert transition it notifies of
    replay_of: str | None = None  # a replay (consumers.replay): the delivery it replays


@dataclass(slots=True)
class Work:
    """An entry or a due retry, decoded and matched: what is left is sending."""

    settlement: Settlement
    event: Event | None = None
    payload: bytes = b""
    targets: list[Target] = field(default_factory=list)

    def unsent(
        self,
        target: Target,
        status: DeliveryStatus,
        reason: str,
        now: float,
        *,
        refers_to: str | None = None,
        channel_type: str = "",
    ) -> DeliveryRecord:
        """Settle ``target`` without sending it (a routing decision), recording why.

        The target leaves ``targets``; its record (``status``, ``reason``,
        ``refers_to``) joins the settlement, committed with the entry's XACK.
        """
        assert self.event is not None, "only decoded work has targets"
        self.targets.remove(target)
        record = new_record(
            self.event,
            target.subscription.name,
            target.channel_name,
            channel_type,
            status,
            target.attempts,
            target.created_at,
            target.id,
        )
        record.reason, record.refers_to, record.updated_at = reason, refers_to, now
        record.history = list(target.history)
        self.settlement.records.append(record)
        return record


def new_record(
    event: Event,
    subscription: str,
    channel: str,
    channel_type: str,
    status: DeliveryStatus = DeliveryStatus.FAILED,
    attempts: int = 0,
    created_at: float | None = None,
    record_id: str | None = None,  # its delivery_id(), when known already
) -> DeliveryRecord:
    """The record of one (event, subscription, channel), before its next attempt."""
    return DeliveryRecord(
        id=record_id or delivery_id(event.id, subscription, channel),
        event_id=event.id,
        event_type=event.event,
        team_id=event.team_id,
        subscription=subscription,
        channel=channel,
        channel_type=channel_type,
        status=status,
        attempts=attempts,
        created_at=time.time() if created_at is None else created_at,
    )


def add_attempt(record: DeliveryRecord, result: SendResult, at: float) -> None:
    """Count one attempt that reached the channel (a rate-limit refusal is none)."""
    record.attempts += 1
    record.history.append(
        Attempt(
            number=record.attempts,
            at=at,
            duration=round(result.latency, 6),
            outcome=result.outcome,
            status=result.status,
            error=result.error,
            response=result.response_excerpt,
        )
    )
    record.last_status, record.last_error = result.status, result.error
    if result.outcome is OutcomeClass.DELIVERED:
        record.status = DeliveryStatus.DELIVERED
