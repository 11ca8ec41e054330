"""Envelopes that trigger, acknowledge or resolve an alert (``Publisher.trigger_alert`` ...).

An alert is one per team and key (``backup-failed:host-1``): the consumer
raises it on the first trigger, folds later triggers into it, and sends a
resolve notice when it is resolved. These helpers only build the event; it
is published like any other, so ``publish``'s guarantees hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventbus.envelope import (
    AlertAction,
    EnvelopeLimits,
    Event,
    Outcome,
    Resource,
    Severity,
    parse_event,
)
from eventbus.errors import EnvelopeError

__all__ = ["ResourceLike", "alert_event"]

ResourceLike = Resource | Mapping[str, str] | str

# trigger: the event failed; resolve: it recovered; acknowledge: neither.
_OUTCOMES = {
    AlertAction.TRIGGER: Outcome.ERROR,
    AlertAction.RESOLVE: Outcome.SUCCESS,
    AlertAction.ACKNOWLEDGE: None,
}


def _resource(value: ResourceLike) -> dict[str, str]:
    if isinstance(value, Resource):
        return {"type": value.type, "id": value.id}
    if isinstance(value, str):
        kind, sep, ident = value.partition(":")
        if not sep or not kind or not ident:
            raise EnvelopeError(
                f"resource {value!r} is not TYPE:ID: write e.g. 'host:db1', or pass "
                "{'type': 'host', 'id': 'db1'}"
            )
        return {"type": kind, "id": ident}
    return dict(value)


def alert_event(
    action: AlertAction | str,
    team: str,
    key: str,
    *,
    event: str,
    resource: ResourceLike,
    severity: Severity | str | None = None,
    error: str | None = None,
    comment: str | None = None,
    actor: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
    limits: EnvelopeLimits | None = None,
) -> Event:
    """The envelope that does ``action`` to the alert ``key`` of ``team``.

    A trigger is a failed ``event`` (``error`` says why); a resolve a
    succeeded one; an acknowledge has no outcome. ``comment`` goes into
    ``metadata["comment"]``. Raises ``EnvelopeError`` naming the bad value.
    """
    try:
        verb = AlertAction(action)
    except ValueError:
        choices = ", ".join(item.value for item in AlertAction)
        raise EnvelopeError(f"alert action {action!r} is not one of {choices}") from None
    if error is not None and verb is not AlertAction.TRIGGER:
        raise EnvelopeError(
            f"error is only for trigger_alert (a {verb.value} is not a failure): "
            "pass comment= instead"
        )
    data: dict[str, Any] = {
        "event": event,
        "team_id": team,
        "resource": _resource(resource),
        "alert": {"key": key, "action": verb.value},
        "metadata": dict(metadata or {}),
    }
    outcome = _OUTCOMES[verb]
    if outcome is not None:
        data["outcome"] = outcome.value
    if error is not None:
        data["error"] = error
    if severity is not None:
        data["severity"] = str(severity).lower()
    if comment:
        data["metadata"]["comment"] = comment
    if actor is not None:
        data["actor"] = dict(actor)
    return parse_event(data, limits) if limits is not None else parse_event(data)
