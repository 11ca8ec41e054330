"""The async publisher client that services embed."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import RedisStreams, connect
from eventbus.catalog import Catalog
from eventbus.envelope import AlertAction, EnvelopeLimits, Event, Severity, encode, parse_event
from eventbus.errors import ConfigError, EventBusError
from eventbus.keys import Keys
from eventbus.settings import Settings, redact_url

from .alerts import ResourceLike, alert_event

if TYPE_CHECKING:
    from eventbus.brokers.rabbitmq import RabbitMQ

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

    With ``broker.kind: rabbitmq`` the same calls publish to RabbitMQ
    (confirmed, message id = event id) and return the event id; errors are
    ``BrokerError`` there too.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        redis: aioredis.Redis | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.catalog = catalog or self.settings.catalog.build()
        self.limits: EnvelopeLimits = self.settings.envelope
        self.keys = Keys(self.settings.broker.prefix)
        self._redis = redis
        self._owns_redis = redis is None
        self._streams: RedisStreams | None = None
        self._rabbitmq: RabbitMQ | None = None
        self._connecting = asyncio.Lock()
        self._state = _State.UNOPENED

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "eventbus", **kwargs: Any) -> Self:
        return cls(Settings(broker={"redis_url": url, "prefix": prefix}), **kwargs)

    def __repr__(self) -> str:
        broker = self.settings.broker
        url = broker.redis_url_redacted if broker.kind == "redis" else self._amqp_url_redacted()
        return f"Publisher({url!r}, prefix={self.keys.prefix!r})"

    def _amqp_url_redacted(self) -> str:
        return redact_url(self.settings.broker.amqp_url.get_secret_value())

    async def __aenter__(self) -> Self:
        if self.settings.broker.kind == "rabbitmq":
            await self._amqp()
        else:
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
                partitions=broker.partitions,
            )
            self._state = _State.OPENED
        return self._streams

    async def _amqp(self) -> RabbitMQ:
        """The started RabbitMQ broker (``broker.kind: rabbitmq``), connected on first use."""
        if self._state is _State.CLOSED:
            raise EventBusError("this Publisher is closed; create a new one")
        async with self._connecting:  # two first publishes open one connection
            if self._rabbitmq is None:
                try:
                    from eventbus.brokers.rabbitmq import RabbitMQ
                except ModuleNotFoundError as exc:
                    raise ConfigError(
                        f"broker.kind is 'rabbitmq', which needs {exc.name}: "
                        "pip install 'eventbus[rabbitmq]'"
                    ) from exc
                broker = RabbitMQ.from_settings(self.settings)
                await broker.start()
                self._rabbitmq = broker
                self._state = _State.OPENED
        return self._rabbitmq

    async def aclose(self) -> None:
        if self._state is _State.OPENED and self._owns_redis and self._redis is not None:
            await self._redis.aclose()
        if self._rabbitmq is not None:
            await self._rabbitmq.close()
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
        if self.settings.broker.kind == "rabbitmq":
            return await (await self._amqp()).publish(ev.team_id, payload)
        return await self._open().publish(ev.team_id, payload, self.settings.broker.stream_maxlen)

    async def publish_many(self, events: Iterable[EventLike]) -> list[str]:
        """Publish a batch in one pipelined round trip; stream ids in order.

        Every event is validated before anything is sent, so a bad event
        publishes none of the batch.
        """
        prepared = [self._prepare(e, durable=True) for e in events]
        items = [(ev.team_id, payload) for ev, payload in prepared]
        if self.settings.broker.kind == "rabbitmq":
            return await (await self._amqp()).publish_many(items)
        return await self._open().publish_many(items, self.settings.broker.stream_maxlen)

    async def publish_transient(self, event: EventLike) -> int:
        """Mirror ``event`` live only (best effort); returns how many listeners got it."""
        ev, payload = self._prepare(event, durable=False)
        if self.settings.broker.kind == "rabbitmq":
            return await (await self._amqp()).publish_transient(ev.team_id, payload)
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
