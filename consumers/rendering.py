"""Turning an envelope into a human notification (title + body lines)."""

from __future__ import annotations

from eventbus.envelope import Event, Outcome
from eventbus.settings import SubscriptionSpec

from .channels.base import Message

__all__ = ["default_title", "render"]

_VERB = {Outcome.SUCCESS: "succeeded", Outcome.ERROR: "failed", None: ""}


def default_title(event: Event) -> str:
    """e.g. ``capsule.create failed: capsule c1 (team-1)``."""
    verb = _VERB[event.outcome]
    head = f"{event.event} {verb}".strip()
    return f"{head}: {event.resource.type} {event.resource.id} ({event.team_id})"


def default_lines(event: Event) -> list[str]:
    actor = event.actor.name or event.actor.id or ""
    lines = [
        f"Outcome: {event.outcome_name}",
        f"Resource: {event.resource.type} {event.resource.id}",
        f"Actor: {event.actor.type.value}{' ' + actor if actor else ''}",
        f"Team: {event.team_id}",
    ]
    if event.error:
        lines.append(f"Error: {event.error}")
    lines.extend(f"{key}: {value}" for key, value in sorted(event.metadata.items()))
    lines.append(f"Time: {event.model_dump(mode='json')['timestamp']}")
    return lines


def render(
    event: Event,
    subscription: SubscriptionSpec | None,
    delivery_id: str,
) -> Message:
    """The message for one (event, subscription) delivery."""
    return Message(
        title=default_title(event),
        body="\n".join(default_lines(event)),
        event=event,
        delivery_id=delivery_id,
        subscription=subscription.name if subscription else "",
    )
