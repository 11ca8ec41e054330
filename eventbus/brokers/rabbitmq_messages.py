"""The AMQP messages of the RabbitMQ backend: built and read in this one place.

A durable event is a persistent message whose body is the envelope JSON,
``message_id`` the event id (receivers deduplicate on it), routing key the
event type and header ``team_id``. Its live mirror, and a transient event,
carry the ``eventbus.live`` message format. A dead letter keeps the body and
id; why it died is in the ``x-eventbus-*`` headers when a consumer set it
aside, or in RabbitMQ's own ``x-death`` headers (``delivery_limit``).
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage

from ..errors import BrokerError
from ..live import live_message
from .base import DeadLetter

__all__ = [
    "body_id",
    "dead_message",
    "durable_message",
    "envelope_keys",
    "live",
    "read_dead",
    "redriven",
]

REASON = "x-eventbus-reason"
ERROR = "x-eventbus-error"
AT = "x-eventbus-at"
GROUP = "x-eventbus-group"
JSON = "application/json"


def envelope_keys(payload: str) -> tuple[str, str | None]:
    """(event type, event id) of an envelope: the routing key and the message id."""
    try:
        data: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BrokerError(f"publish: the payload is not JSON ({exc})") from exc
    event_type = data.get("event") if isinstance(data, dict) else None
    if not isinstance(event_type, str) or not event_type:
        raise BrokerError("publish: the payload is not an envelope with an 'event' type")
    event_id = data.get("id")
    return event_type, event_id if isinstance(event_id, str) and event_id else None


def durable_message(team_id: str, body: bytes, event_id: str | None) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        message_id=event_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        content_type=JSON,
        headers={"team_id": team_id},
    )


def live(team_id: str, payload: str, event_id: str | None, durable: bool) -> aio_pika.Message:
    """The live mirror message; no stream id, as RabbitMQ mode replays nothing."""
    return aio_pika.Message(
        live_message(None, payload).encode(),
        message_id=event_id,
        content_type=JSON,
        headers={"team_id": team_id, "durable": durable},
    )


def dead_message(
    body: bytes, dead_id: str, team_id: str, group: str, reason: str, error: str
) -> aio_pika.Message:
    headers: dict[str, Any] = {
        "team_id": team_id,
        REASON: reason,
        ERROR: error[:2000],
        AT: repr(time.time()),
        GROUP: group,
    }
    return aio_pika.Message(
        body, message_id=dead_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, headers=headers
    )


def redriven(message: AbstractIncomingMessage, letter: DeadLetter) -> tuple[aio_pika.Message, str]:
    """A dead letter as a new durable message, and its routing key.

    The body goes back as it was, even one that is no envelope (the consumer
    sets it aside again, as on Redis); its routing key is then ``invalid``.
    """
    try:
        event_type, _event_id = envelope_keys(message.body.decode("utf-8", "replace"))
    except BrokerError:
        event_type = "invalid"
    team = str((message.headers or {}).get("team_id") or "")
    return durable_message(team, message.body, letter.id), event_type


def body_id(body: bytes) -> str:
    """An id for a message that came without one (not published by eventbus)."""
    return "sha256:" + hashlib.sha256(body).hexdigest()[:24]


def read_dead(message: AbstractIncomingMessage, max_receives: int) -> DeadLetter:
    headers: dict[str, Any] = dict(message.headers or {})
    dead_id = message.message_id or body_id(message.body)
    reason = str(headers.get(REASON) or headers.get("x-first-death-reason") or "")
    error = str(headers.get(ERROR) or "")
    at = float(str(headers.get(AT) or 0))
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        when = deaths[0].get("time")
        at = at or (when.timestamp() if isinstance(when, datetime) else 0.0)
    if reason == "delivery_limit" and not error:
        queue = headers.get("x-first-death-queue", "")
        error = (
            f"received more than {max_receives} times (x-delivery-limit of queue "
            f"{queue}) without being acknowledged"
        )
    return DeadLetter(dead_id, message.message_id or "", reason, error, at, message.body)
