"""Alert state for tests of the operator side, written as the worker writes it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from ulid import ULID

from consumers.store import Alert, AlertStatus, AlertStore, DeliveryRecord, DeliveryStatus
from consumers.store.commit import Committer
from consumers.store.settlement import Settlement
from eventbus.envelope import Event
from eventbus.keys import Keys

__all__ = ["make_alert", "save_alert", "stream_events"]


def make_alert(
    team: str = "team-a",
    key: str = "backup-failed:host-1",
    status: AlertStatus = AlertStatus.FIRING,
    **fields: Any,
) -> Alert:
    now = time.time()
    values: dict[str, Any] = {
        "id": str(ULID()),
        "team_id": team,
        "key": key,
        "status": status,
        "severity": "error",
        "first_seen": now - 3 * 3600 - 120,
        "last_seen": now - 60,
        "count": 7,
        "last_event": str(ULID()),
        "summary": f"backup failed on {key.rpartition(':')[2]}",
        "event_type": "backup.run",
        "resource_type": "host",
        "resource_id": key.rpartition(":")[2],
        **fields,
    }
    if status is AlertStatus.ACKNOWLEDGED:
        values.setdefault("acknowledged_by", "bob")
        values.setdefault("acknowledged_at", now - 600)
    if status is AlertStatus.RESOLVED:
        values.setdefault("resolved_at", now - 30)
    return Alert(**values)


async def save_alert(
    redis: aioredis.Redis,
    keys: Keys,
    alert: Alert,
    *,
    events: Sequence[str] = (),
    notified: dict[str, DeliveryStatus] | None = None,
) -> None:
    """Save ``alert`` with ``events`` folded in (oldest first) and, for each event
    in ``notified``, one delivery record of that status (as the worker commits)."""
    await AlertStore(redis, keys).save(alert)
    if events:
        scores = {event_id: alert.first_seen + index for index, event_id in enumerate(events)}
        await redis.zadd(keys.alert_events(alert.id), scores)
    records = [
        DeliveryRecord(
            id=f"msg_{event_id}",
            event_id=event_id,
            event_type=alert.event_type,
            team_id=alert.team_id,
            subscription="pager",
            channel="oncall",
            channel_type="pagerduty",
            status=status,
            attempts=1 if status is DeliveryStatus.DELIVERED else 0,
            reason=None if status is DeliveryStatus.DELIVERED else f"folded into alert {alert.id}",
        )
        for event_id, status in (notified or {}).items()
    ]
    if records:
        committer = Committer(redis, keys, group="delivery", ttl=3600)
        await committer.commit([Settlement(records=records)], now=time.time())


async def stream_events(redis: aioredis.Redis, keys: Keys) -> list[Event]:
    """Every event in the stream, oldest first."""
    entries: Any = await redis.xrange(keys.events)
    return [Event.model_validate(orjson.loads(fields[b"payload"])) for _, fields in entries]
