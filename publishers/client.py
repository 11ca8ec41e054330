"""The async publisher client that services embed."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import redis.asyncio as aioredis

from eventbus.brokers import streams_only
from eventbus.brokers.redis_streams import RedisStreams, connect
from eventbus.catalog import Catalog
from eventbus.envelope import AlertAction, EnvelopeLimits, Event, Severity, encode, parse_event
from eventbus.errors import EventBusError
from eventbus.keys import Keys
from eventbus.settings import Settings

from .alerts import ResourceLike, alert_event

__all__ = ["EventLike", "Publisher"]

EventLike = Event | dict[str, Any]


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class Publisher:
    """Publishes events durably (stream + live mirror) or transiently (live only).

    Construct it from ``Settings`` or a URL; it connects on first use, or use
    ``async with``. Every durable publish returns only once the entry is in
    the stream, and raises on failure (nothing is dropped silently)::

        async with Publisher.from_url("redis://localhost:6379/0") as bus:
            stream_id = await bus.publish(Event(event="capsule.create", ...))
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        redis: aioredis.Redis | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.settings = settings or Settings()
        streams_only(self.settings.broker.kind, "the publisher")
        self.catalog = catalog or self.settings.catalog.build()
        self.limits: EnvelopeLimits = self.settings.envelope
        self.keys = Keys(self.settings.broker.prefix)
        self._redis = redis
        self._owns_redis = redis is None
        self._streams: RedisStreams | None = None
        self._state = _State.UNOPENED

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "eventbus", **kwargs: Any) -> Self:
        return cls(Settings(broker={"redis_url": url, "prefix": prefix}), **kwargs)

    def __repr__(self) -> str:
        return (
            f"Publisher({self.settings.broker.redis_url_redacted!r}, prefix={self.keys.prefix!r})"
        )

    async def __aenter__(self) -> Self:
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _open(self) -> RedisStreams:
        if self._state is _State.CLOSED:
            raise EventBusError("this Publisher is closed; create a new one")
        if self._streams is None:
            broker = self.settings.broker
            if self._redis is None:
                self._redis = connect(
                    broker.redis_url.get_secret_value(),
                    retries=broker.publish_retries,
                    socket_timeout=broker.socket_timeout,
                )
            self._streams = RedisStreams(
                self._redis,
                self.keys,
                replica_acks=broker.wait_replicas,
                replica_ack_timeout=broker.replica_ack_timeout,
            )
            self._state = _State.OPENED
        return self._streams

    async def aclose(self) -> None:
        if self._state is _State.OPENED and self._owns_redis and self._redis is not None:
            await self._redis.aclose()
        self._state = _State.CLOSED

    def _prepare(self, event: EventLike, durable: bool) -> tuple[Event, str]:
        ev = event if isinstance(event, Event) else parse_event(event, self.limits)
        if durable:
            self.catalog.check_durable(ev.event)
        else:
            self.catalog.check_transient(ev.event)
        return ev, encode(ev, self.limits).decode()

    async def publish(self, event: EventLike) -> str:
        """Append ``event`` to the stream and mirror it live; returns the stream id.

        Raises ``EnvelopeError``/``CatalogError`` for a bad event and
        ``BrokerError`` when Redis refuses or cannot be reached (after
        ``broker.publish_retries`` retries of connection errors).
        """
        ev, payload = self._prepare(event, durable=True)
        return await self._open().publish(ev.team_id, payload, self.settings.broker.stream_maxlen)

    async def publish_many(self, events: Iterable[EventLike]) -> list[str]:
        """Publish a batch in one pipelined round trip; stream ids in order.

        Every event is validated before anything is sent, so a bad event
        publishes none of the batch.
        """
        prepared = [self._prepare(e, durable=True) for e in events]
        items = [(ev.team_id, payload) for ev, payload in prepared]
        return await self._open().publish_many(items, self.settings.broker.stream_maxlen)

    async def publish_transient(self, event: EventLike) -> int:
        """Mirror ``event`` live only (best effort); returns how many listeners got it."""
        ev, payload = self._prepare(event, durable=False)
        return await self._open().publish_transient(ev.team_id, payload)

    async def trigger_alert(
        self,
        team: str,
        key: str,
        *,
        event: str,
        resource: ResourceLike,
        severity: Severity | str | None = None,
        error: str | None = None,
        metadata: Mapping[str, str] | None = None,
        actor: Mapping[str, str] | None = None,
    ) -> str:
        """Publish a failed ``event`` that raises the alert ``key`` of ``team`` (or,
        while it is open, is folded into it); returns the stream id::

            await bus.trigger_alert("ops", "backup-failed:h1", event="backup.run",
                                    resource="host:h1", error="disk full")
        """
        ev = alert_event(
            AlertAction.TRIGGER,
            team,
            key,
            event=event,
            resource=resource,
            severity=severity,
            error=error,
            metadata=metadata,
            actor=actor,
            limits=self.limits,
        )
        return await self.publish(ev)

    async def acknowledge_alert(
        self,
        team: str,
        key: str,
        *,
        event: str,
        resource: ResourceLike,
        by: str | None = None,
        comment: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """Publish the acknowledgement of an open alert (quiet, still open); ``by``
        is the user, sent as the event's actor."""
        actor = {"type": "user", "id": by, "name": by} if by else None
        ev = alert_event(
            AlertAction.ACKNOWLEDGE,
            team,
            key,
            event=event,
            resource=resource,
            comment=comment,
            metadata=metadata,
            actor=actor,
            limits=self.limits,
        )
        return await self.publish(ev)

    async def resolve_alert(
        self,
        team: str,
        key: str,
        *,
        event: str,
        resource: ResourceLike,
        comment: str | None = None,
        metadata: Mapping[str, str] | None = None,
        actor: Mapping[str, str] | None = None,
    ) -> str:
        """Publish a succeeded ``event`` that resolves the alert ``key`` of ``team``
        (subscriptions then send its resolve notice); returns the stream id."""
        ev = alert_event(
            AlertAction.RESOLVE,
            team,
            key,
            event=event,
            resource=resource,
            comment=comment,
            metadata=metadata,
            actor=actor,
            limits=self.limits,
        )
        return await self.publish(ev)
