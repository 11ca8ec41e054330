"""Alert state: one per (team, alert key), kept by the worker, read by operators.

Layout (prefix ``p``, every key under the hash tag, see ``eventbus.keys``):
- ``p:alert:<digest of team+key>``  JSON string: the ``Alert`` (``to_json``)
- ``p:alerts``                      sorted set of those key names by last change
- ``p:alert:<alert id>:events``     sorted set of event ids folded in, by time

The worker changes an alert only inside the commit script that records the
deliveries of the event changing it (invariant 12), so the state and the
records always agree; ``save`` exists for tests and tools. Resolved alerts
are kept for ``alerts.retention`` (they expire), firing ones do not.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import orjson
import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import translated
from eventbus.keys import Keys

__all__ = ["Alert", "AlertStatus", "AlertStore", "Transition"]

# Alerts looked at per round trip when listing.
_PAGE = 500


class AlertStatus(StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    @property
    def open(self) -> bool:
        """Firing or acknowledged: a trigger touches it instead of raising a new one."""
        return self is not AlertStatus.RESOLVED


class Transition(StrEnum):
    """What an event (or the auto-resolver, or a repeat) did to an alert."""

    RAISED = "raised"
    TOUCHED = "touched"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REPEAT = "repeat"


@dataclass(slots=True)
class Alert:
    id: str  # a ULID, new on every raise
    team_id: str
    key: str
    status: AlertStatus
    severity: str  # the highest seen while firing (eventbus.envelope.Severity value)
    first_seen: float
    last_seen: float
    count: int  # events folded in
    last_event: str  # event id
    summary: str  # the rendered title of the raising event
    event_type: str = ""  # the raising event's type (CLI ack/resolve publish it)
    resource_type: str = ""
    resource_id: str = ""
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    resolved_at: float | None = None
    resolve_reason: str | None = None
    last_notified_at: float | None = None  # for repeat_interval

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> Alert:
        data = orjson.loads(raw)
        data["status"] = AlertStatus(data["status"])
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    @property
    def open_for(self) -> float:
        """Seconds from the first event to the resolve (or to the last event, if open)."""
        end = self.resolved_at if self.resolved_at is not None else self.last_seen
        return max(0.0, end - self.first_seen)


class AlertStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def get(self, team_id: str, key: str) -> Alert | None:
        async with translated("read alert"):
            raw = await self.redis.get(self.keys.alert(team_id, key))
        return Alert.from_json(raw) if raw else None

    async def query(
        self,
        *,
        teams: Collection[str] | None = None,
        status: AlertStatus | None = None,
        limit: int = 1000,
    ) -> list[Alert]:
        """Alerts of ``teams`` (every team for ``None``), newest change first."""
        found: list[Alert] = []
        start = 0
        async with translated("list alerts"):
            while len(found) < limit:
                names: Any = await self.redis.zrevrange(self.keys.alerts, start, start + _PAGE - 1)
                if not names:
                    break
                start += len(names)
                for raw in await self.redis.mget(names):
                    if not raw:
                        continue  # expired (resolved past retention)
                    alert = Alert.from_json(raw)
                    if teams is not None and alert.team_id not in teams:
                        continue
                    if status is not None and alert.status is not status:
                        continue
                    found.append(alert)
        return found[:limit]

    async def events(self, alert: Alert, limit: int = 100) -> list[str]:
        """Ids of the newest events folded into ``alert``, newest first."""
        async with translated("read alert events"):
            raw = await self.redis.zrevrange(self.keys.alert_events(alert.id), 0, limit - 1)
        return [item.decode() if isinstance(item, bytes) else str(item) for item in raw]

    async def save(self, alert: Alert, ttl: float | None = None) -> None:
        """Write ``alert`` as the worker's script does (tests and tools; not the worker)."""
        name = self.keys.alert(alert.team_id, alert.key)
        async with translated("write alert"), self.redis.pipeline(transaction=True) as pipe:
            pipe.set(name, alert.to_json(), ex=int(ttl) if ttl else None)
            pipe.zadd(self.keys.alerts, {name: alert.last_seen})
            await pipe.execute()
