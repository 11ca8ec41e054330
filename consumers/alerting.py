"""The alert state machine: what one action does to one alert (pure, no I/O).

An alert is the open problem of one (team, alert key). Given its current
state (``None`` when there is none) and an action at a time, ``step``
returns the new state and the ``Transition`` it made:

==============  ======================  ==========================  =====================
action          none / resolved         firing                      acknowledged
==============  ======================  ==========================  =====================
trigger         raised (a new alert id)  touched                     touched (stays acked)
acknowledge     nothing                 acknowledged                nothing (acked already)
resolve         nothing                 resolved                    resolved
repeat (timer)  nothing                 repeat                      nothing (acked: quiet)
auto-resolve    nothing                 resolved (reason given)     resolved (reason given)
==============  ======================  ==========================  =====================

A touch counts the event (``count`` + 1), moves ``last_seen`` and keeps the
highest severity seen. "Nothing" is a step without a transition: the state
is left as it is, and an event doing nothing is still recorded (its delivery
says why) but notifies nobody. Acknowledging or resolving an alert that is
not open is such an event: PagerDuty also accepts and ignores a resolve of
an incident it does not know.

Which transitions notify a subscription is ``notifies``; the atomic, shared
application of these steps is ``consumers.routing.alerts``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from ulid import ULID

from eventbus.envelope import AlertAction, Severity
from eventbus.settings import SubscriptionSpec

from .channels.base import AlertNotice
from .store.alerts import Alert, AlertStatus, Transition

__all__ = ["Action", "Origin", "Step", "notice", "notifies", "step"]


class Action(StrEnum):
    """What happens to an alert: an event's action, or one of the timers'."""

    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    REPEAT = "repeat"
    AUTO_RESOLVE = "auto_resolve"

    @classmethod
    def of(cls, action: AlertAction) -> Action:
        return cls(action.value)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an action comes from: the event (or timer) and what the new alert would hold."""

    team_id: str
    key: str
    event_id: str
    at: float
    severity: str = Severity.INFO.value
    summary: str = ""
    event_type: str = ""
    resource_type: str = ""
    resource_id: str = ""
    by: str | None = None  # who acknowledges (the actor)
    reason: str | None = None  # why it resolves (a comment, or the auto-resolve)


@dataclass(frozen=True, slots=True)
class Step:
    """The state after an action, and what it did (``None``: nothing changed)."""

    alert: Alert | None
    transition: Transition | None
    before: AlertStatus | None = None  # the status the action found


def step(current: Alert | None, action: Action, origin: Origin, new_id: str | None = None) -> Step:
    """Apply ``action`` to ``current``; ``new_id`` names a raised alert (a new ULID if absent)."""
    before = current.status if current is not None else None
    if current is None or not current.status.open:
        if action is Action.TRIGGER:
            return Step(_raised(origin, new_id or str(ULID())), Transition.RAISED, before)
        return Step(current, None, before)
    if action is Action.TRIGGER:
        return Step(_touched(current, origin), Transition.TOUCHED, before)
    if action is Action.ACKNOWLEDGE:
        if current.status is AlertStatus.ACKNOWLEDGED:
            return Step(current, None, before)
        acked = replace(
            current,
            status=AlertStatus.ACKNOWLEDGED,
            acknowledged_by=origin.by or "unknown",
            acknowledged_at=origin.at,
            last_event=origin.event_id,
        )
        return Step(acked, Transition.ACKNOWLEDGED, before)
    if action is Action.REPEAT:
        if current.status is not AlertStatus.FIRING:
            return Step(current, None, before)
        return Step(replace(current, last_notified_at=origin.at), Transition.REPEAT, before)
    # resolve, by an event or by the auto-resolver
    resolved = replace(
        current,
        status=AlertStatus.RESOLVED,
        resolved_at=origin.at,
        resolve_reason=origin.reason,
        last_event=origin.event_id if action is Action.RESOLVE else current.last_event,
    )
    return Step(resolved, Transition.RESOLVED, before)


def _raised(origin: Origin, alert_id: str) -> Alert:
    return Alert(
        id=alert_id,
        team_id=origin.team_id,
        key=origin.key,
        status=AlertStatus.FIRING,
        severity=origin.severity,
        first_seen=origin.at,
        last_seen=origin.at,
        count=1,
        last_event=origin.event_id,
        summary=origin.summary,
        event_type=origin.event_type,
        resource_type=origin.resource_type,
        resource_id=origin.resource_id,
        last_notified_at=origin.at,
    )


def _touched(current: Alert, origin: Origin) -> Alert:
    return replace(
        current,
        count=current.count + 1,
        last_seen=max(current.last_seen, origin.at),
        severity=_highest(current.severity, origin.severity),
        last_event=origin.event_id,
    )


def _highest(first: str, second: str) -> str:
    try:
        return first if Severity(first).rank >= Severity(second).rank else second
    except ValueError:  # not a severity we know (a newer writer): keep the one we have
        return first


def notifies(spec: SubscriptionSpec, transition: Transition) -> bool:
    """Whether ``spec`` sends a notification for ``transition``.

    ``notify_on`` lists them (default: raise and resolve, plus repeat when
    ``repeat_interval`` is set); ``send_resolved: false`` turns off resolves.
    """
    if transition is Transition.RESOLVED and not spec.send_resolved:
        return False
    return _NOTIFY_NAME[transition] in spec.alert_notify_on


_NOTIFY_NAME = {
    Transition.RAISED: "raise",
    Transition.TOUCHED: "touch",
    Transition.ACKNOWLEDGED: "acknowledge",
    Transition.RESOLVED: "resolve",
    Transition.REPEAT: "repeat",
}


def notice(alert: Alert, transition: Transition) -> AlertNotice:
    """What a channel reads of ``alert`` right after ``transition``."""
    return AlertNotice(
        id=alert.id,
        team_id=alert.team_id,
        key=alert.key,
        transition=transition.value,
        status=alert.status.value,
        severity=alert.severity,
        first_seen=alert.first_seen,
        last_seen=alert.last_seen,
        count=alert.count,
        summary=alert.summary,
        acknowledged_by=alert.acknowledged_by,
        resolved_at=alert.resolved_at,
        reason=alert.resolve_reason,
    )
