"""Digests: what a group's notification carries, for webhooks and for people.

A webhook receives one JSON document, signed like any delivery (its
``webhook-id`` is the digest's delivery id)::

    {"type": "eventbus.digest", "group": {"team": "team-1", "event": "host.down"},
     "count": 5, "events": [<envelope>, ...], "truncated": 0}

``events`` holds at most ``digest_max_events`` envelopes, oldest first;
``truncated`` says how many more the digest counted. Chat channels get a
message titled ``5 x host.down (team-1)`` (the x a multiplication sign)
with one line per event, kept within a budget that every chat service accepts in one message (each
channel still applies its own limit).

A digest's delivery is a ``Work`` like a retry's: its payload is the document
itself (so a retry of the digest needs nothing else), and its ``event`` the
first envelope (what a channel reads for colour or priority). Subscription
templates do not apply to digests.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from eventbus.envelope import EnvelopeLimits, Event, parse_event
from eventbus.errors import EnvelopeError, PermanentDeliveryError
from eventbus.settings import SubscriptionSpec

from .channels.base import Message
from .rendering import default_title
from .store import DueGroup, RetryJob

__all__ = [
    "BODY_BUDGET",
    "DIGEST_TYPE",
    "TIMES",
    "DigestMessage",
    "digest_job",
    "digest_lines",
    "digest_message",
    "digest_title",
    "document",
    "is_digest",
    "lead_event",
]

DIGEST_TYPE: Final = "eventbus.digest"
# ``document()`` writes "type" first; no envelope has a "type" field.
_PREFIX: Final = b'{"type":"' + DIGEST_TYPE.encode() + b'"'
# Characters of body lines: under Telegram's and Discord's 4096 with room to spare.
BODY_BUDGET: Final = 3500
_SHOWN_NAMES = 3
TIMES: Final = "\N{MULTIPLICATION SIGN}"


class DigestMessage(Message):
    """A digest's message: the chat text, and the document a webhook posts."""

    __slots__ = ("document",)

    def __init__(
        self,
        title: str,
        body: str,
        *,
        event: Event,
        delivery_id: str,
        subscription: str,
        document: bytes,
    ) -> None:
        super().__init__(
            title, body, event=event, delivery_id=delivery_id, subscription=subscription
        )
        self.document = document


def document(due: DueGroup) -> bytes:
    """The webhook body of a claimed digest (envelopes embedded as stored)."""
    events = [orjson.Fragment(envelope) for envelope in due.events]
    return orjson.dumps(
        {
            "type": DIGEST_TYPE,
            "group": due.values,
            "count": due.count,
            "events": events,
            "truncated": max(0, due.count - len(events)),
        }
    )


def is_digest(payload: bytes) -> bool:
    """Whether a work's payload is a digest document rather than an envelope."""
    return payload.startswith(_PREFIX)


def digest_job(due: DueGroup) -> RetryJob | None:
    """The digest's first attempt, as a retry job; ``None`` when no event is left."""
    if not due.events:
        return None
    return RetryJob(
        delivery_id=due.digest_id,
        payload=document(due),
        subscription=due.subscription,
        channel=due.channel,
        attempts=0,
        created_at=due.opened_at,
    )


def _parsed(payload: bytes, limits: EnvelopeLimits) -> tuple[dict[str, Any], list[Event]]:
    try:
        doc = orjson.loads(payload)
        events = [parse_event(item, limits) for item in doc["events"]]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise EnvelopeError(f"not a digest document: {type(exc).__name__}") from None
    if not events:
        raise EnvelopeError("digest document without events")
    return doc, events


def lead_event(payload: bytes, limits: EnvelopeLimits) -> Event:
    """The first event of a digest document (``EnvelopeError`` if it is not one)."""
    return _parsed(payload, limits)[1][0]


def digest_title(count: int, events: list[Event]) -> str:
    """``5 x host.down (team-1)`` (x: ``TIMES``); several types or teams are listed, then ``…``."""
    types = _names(event.event for event in events)
    teams = _names(event.team_id for event in events)
    return f"{count} {TIMES} {types} ({teams})"


def _names(values: Any) -> str:
    unique = list(dict.fromkeys(values))
    shown = ", ".join(unique[:_SHOWN_NAMES])
    return shown + (", …" if len(unique) > _SHOWN_NAMES else "")


def digest_lines(doc: dict[str, Any], events: list[Event]) -> list[str]:
    """The group, then one line per event within ``BODY_BUDGET``, then what is left out."""
    group = ", ".join(f"{path}={value}" for path, value in doc.get("group", {}).items())
    lines = [f"Group: {group}"] if group else []
    used = sum(len(line) + 1 for line in lines)
    shown = 0
    for event in events:
        line = f"{event.timestamp_text} {default_title(event)}"
        if used + len(line) + 1 > BODY_BUDGET:
            break
        lines.append(line)
        used += len(line) + 1
        shown += 1
    left = int(doc.get("count", len(events))) - shown
    if left > 0:
        lines.append(f"… and {left} more")
    return lines


def digest_message(
    payload: bytes, subscription: SubscriptionSpec | None, delivery_id: str, limits: EnvelopeLimits
) -> DigestMessage:
    """The message of a digest delivery (``PermanentDeliveryError`` for a broken document)."""
    try:
        doc, events = _parsed(payload, limits)
    except EnvelopeError as exc:
        raise PermanentDeliveryError(str(exc)) from None
    return DigestMessage(
        digest_title(int(doc.get("count", len(events))), events),
        "\n".join(digest_lines(doc, events)),
        event=events[0],
        delivery_id=delivery_id,
        subscription=subscription.name if subscription else "",
        document=payload,
    )
