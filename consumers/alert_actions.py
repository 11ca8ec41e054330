"""Operating alerts: the order operators see them in, and acknowledging or resolving one.

Acknowledge or resolve is one event with the alert action, published.

The CLI (``eventbus alerts ack|resolve``) and the HTTP API
(``POST /v1/alerts/{key}/ack|resolve``) both come here. Neither writes the
alert state itself: the action is published as an event of the alert's own
type and resource with ``alert: {key, action}``, so the worker folds it into
the alert inside its commit (invariant 12) and every subscription of that
event (PagerDuty, Opsgenie, chat) hears of it as it would of a publisher's.

The event carries the alert's severity (a ``min_severity`` subscription that
heard the raise hears the ack), no outcome (an operator's action is neither
a success nor a failure of the thing the alert is about), and metadata
``alert_id`` (the alert it was meant for), ``via`` (cli or http) and
``comment`` when given.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from eventbus.envelope import (
    Actor,
    ActorType,
    AlertAction,
    AlertRef,
    Event,
    Resource,
    Severity,
)
from eventbus.errors import EventBusError
from publishers.client import Publisher

from .store.alerts import Alert, AlertStatus, AlertStore

__all__ = [
    "MAX_COMMENT",
    "ActionError",
    "Operated",
    "Refusal",
    "by_urgency",
    "listing",
    "operate",
]

MAX_COMMENT: Final = 1000  # characters; metadata values are bounded too
# When the worker did not record the raising event's type (an alert written
# before it kept one), the action goes out under these types.
_FALLBACK_TYPES: Final = {
    AlertAction.ACKNOWLEDGE: "alert.acknowledge",
    AlertAction.RESOLVE: "alert.resolve",
}


_STATUS_ORDER: Final = {
    AlertStatus.FIRING: 0,
    AlertStatus.ACKNOWLEDGED: 1,
    AlertStatus.RESOLVED: 2,
}


def by_urgency(alerts: Iterable[Alert]) -> list[Alert]:
    """Firing first, then acknowledged, then resolved; within each, the most severe
    first, then the most recently seen."""

    def urgency(alert: Alert) -> tuple[int, int, float]:
        level = _severity(alert.severity)
        rank = level.rank if level is not None else 0
        return _STATUS_ORDER[alert.status], -rank, -alert.last_seen

    return sorted(alerts, key=urgency)


async def listing(
    store: AlertStore,
    *,
    teams: Collection[str] | None,
    status: AlertStatus | None,
    limit: int,
) -> list[Alert]:
    """Up to ``limit`` alerts, ``by_urgency``. Without ``status`` each status is
    read in turn, firing first, so that many newer resolved alerts never push an
    older firing one out of the list."""
    if status is not None:
        return by_urgency(await store.query(teams=teams, status=status, limit=limit))
    found: list[Alert] = []
    for each in _STATUS_ORDER:
        if len(found) < limit:
            found += await store.query(teams=teams, status=each, limit=limit - len(found))
    return by_urgency(found)


def _severity(value: str) -> Severity | None:
    try:
        return Severity(value)
    except ValueError:
        return None


class Refusal(StrEnum):
    """Why an action was refused: the HTTP API maps these to 404, 409 and 422."""

    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID = "invalid"


class ActionError(EventBusError):
    """The action cannot be taken; ``refusal`` says which kind of reason."""

    def __init__(self, message: str, refusal: Refusal) -> None:
        super().__init__(message)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class Operated:
    alert: Alert  # as it was before the action
    event: Event  # what was published
    stream_id: str


def _check(alert: Alert | None, team: str, key: str, action: AlertAction) -> Alert:
    if alert is None:
        raise ActionError(
            f"team {team!r} has no alert with key {key!r} (see `eventbus alerts list "
            f"--team {team}`; resolved alerts are kept for alerts.retention)",
            Refusal.NOT_FOUND,
        )
    if alert.status is AlertStatus.RESOLVED:
        raise ActionError(
            f"alert {key!r} of team {team!r} is resolved already; a new failure raises a new alert",
            Refusal.CONFLICT,
        )
    if action is AlertAction.ACKNOWLEDGE and alert.status is AlertStatus.ACKNOWLEDGED:
        raise ActionError(
            f"alert {key!r} of team {team!r} is acknowledged already "
            f"(by {alert.acknowledged_by or 'someone'}); resolve it when it is fixed",
            Refusal.CONFLICT,
        )
    return alert


def _event(alert: Alert, action: AlertAction, actor: Actor, comment: str | None, via: str) -> Event:
    metadata = {"alert_id": alert.id, "via": via}
    if comment:
        metadata["comment"] = comment
    return Event(
        event=alert.event_type or _FALLBACK_TYPES[action],
        team_id=alert.team_id,
        actor=actor,
        resource=Resource(type=alert.resource_type or "alert", id=alert.resource_id or alert.key),
        metadata=metadata,
        severity=_severity(alert.severity),
        alert=AlertRef(key=alert.key, action=action),
    )


async def operate(
    store: AlertStore,
    publisher: Publisher,
    *,
    team: str,
    key: str,
    action: AlertAction,
    by: str,
    via: str,
    comment: str | None = None,
    actor_type: ActorType = ActorType.USER,
    actor_id: str | None = None,
) -> Operated:
    """Publish ``action`` (acknowledge or resolve) for the open alert ``key`` of ``team``.

    Raises ``ActionError`` when the alert does not exist, is resolved (or,
    to acknowledge, acknowledged already), or the input is not usable;
    ``BrokerError`` when Redis fails. ``by`` names who did it (the actor).
    """
    if action is AlertAction.TRIGGER:
        raise ActionError(
            "an operator acknowledges or resolves; triggers come from events", Refusal.INVALID
        )
    by = " ".join(by.split())
    if not by:
        raise ActionError('say who does it (--by NAME, or "by" in the body)', Refusal.INVALID)
    if comment is not None and len(comment) > MAX_COMMENT:
        raise ActionError(
            f"the comment has {len(comment)} characters; at most {MAX_COMMENT}", Refusal.INVALID
        )
    alert = _check(await store.get(team, key), team, key, action)
    actor = Actor(type=actor_type, id=actor_id, name=by[:200])
    event = _event(alert, action, actor, comment or None, via)
    stream_id = await publisher.publish(event)
    return Operated(alert, event, stream_id)
