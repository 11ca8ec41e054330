"""RabbitMQ backend (aio-pika): the same ``Broker`` guarantees on a second engine.

Wraps one robust aio-pika connection (it reconnects with backoff and restores
channels and consumers). Publishing goes through one channel with publisher
confirms: ``publish`` returns once RabbitMQ confirmed a persistent message
that reached the group queue (``mandatory``), and raises ``BrokerError`` on a
nack, a return (unroutable) or a timeout (``broker.socket_timeout``). The
message id is the event id, so receivers deduplicate as on Redis.

Each consumer gets its own channel (prefetch = ``consumer.max_in_flight``,
manual ack). Closing it, or losing the connection, hands its unacked
messages back at once. RabbitMQ counts deliveries (``x-delivery-count``);
a message past ``x-delivery-limit`` (= ``consumer.max_receives``) is
dead-lettered by the server with the reason ``delivery_limit``. Delivery
records, retries and routing state stay in Redis in this mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Self

import aio_pika
from aio_pika import exceptions as amqp_errors
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from ..errors import BrokerError, EventBusError
from ..settings import Settings, redact_url
from . import rabbitmq_messages as messages
from .base import Broker, DeadLetter, Received
from .rabbitmq_channels import Consumer, drain, restored, stale
from .rabbitmq_errors import UNAVAILABLE, Translator
from .rabbitmq_topology import Topology

__all__ = ["RabbitMQ", "Topology"]

log = logging.getLogger(__name__)

RECONNECT_INTERVAL = 2.0  # seconds between reconnection attempts (aio-pika's default: 5)
RETRY_DELAY = 0.2  # seconds before publishing again on a channel closed before it sent
MAX_IN_FLIGHT = 1000  # publishes of one publish_many call awaiting confirmation at once


class RabbitMQ:
    """The ``Broker`` on RabbitMQ; ``async with`` (or ``start``/``close``) around its use.

    ``group`` is the consumer group whose queue publishing declares, so an
    event published before any worker started is kept, not returned.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "eventbus",
        *,
        group: str | None = "delivery",
        max_receives: int = 5,
        prefetch: int = 256,
        timeout: float = 5.0,
    ) -> None:
        self._url = url
        self.url_redacted = redact_url(url)
        self.topology = Topology(prefix, max_receives)
        self.group = group
        self.max_receives = max_receives
        self.prefetch = prefetch
        self.timeout = timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: tuple[AbstractExchange, AbstractExchange, AbstractExchange] | None = None
        self._groups: set[str] = set()
        self._consumers: dict[tuple[str, str], Consumer] = {}
        self._held: dict[str, tuple[tuple[str, str], AbstractIncomingMessage]] = {}
        self._handles = itertools.count(1)
        self._closed = False
        self._opening = asyncio.Lock()
        self._translated = Translator(url, self.topology, timeout)

    @classmethod
    def from_settings(cls, settings: Settings, *, consuming: bool = True) -> Self:
        """``consuming=False`` (a live reader): no group queue is looked for at start."""
        consumer = settings.consumer
        return cls(
            settings.broker.amqp_url.get_secret_value(),
            settings.broker.prefix,
            group=consumer.group if consuming else None,
            max_receives=consumer.max_receives,
            prefetch=consumer.max_in_flight,
            timeout=settings.broker.socket_timeout,
        )

    def __repr__(self) -> str:
        return f"RabbitMQ({self.url_redacted!r}, prefix={self.topology.prefix!r})"

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Connect, declare the exchanges and the group queue (idempotent)."""
        if self._closed:
            raise EventBusError("this RabbitMQ broker is closed; create a new one")
        if self._connection is not None:
            return
        with self._translated("connect"):
            self._connection = await aio_pika.connect_robust(
                self._url, timeout=self.timeout, reconnect_interval=RECONNECT_INTERVAL
            )
            self._channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            self._exchanges = await self.topology.declare_exchanges(self._channel)
        if self.group is not None:
            await self._routable(self.group)

    async def close(self) -> None:
        self._closed = True
        if self._connection is not None:
            with contextlib.suppress(*UNAVAILABLE, amqp_errors.AMQPError):
                await self._connection.close()
        self._connection = self._channel = self._exchanges = None
        self._consumers.clear()
        self._held.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _open(self) -> tuple[AbstractChannel, tuple[AbstractExchange, ...]]:
        if self._channel is None or self._exchanges is None:
            state = "closed" if self._closed else "not started"
            raise EventBusError(f"this RabbitMQ broker is {state}: use 'async with' or start()")
        return self._channel, self._exchanges

    # -- publishing -----------------------------------------------------------

    async def publish(self, team_id: str, payload: str) -> str:
        """Publish durably (confirmed) and mirror live; returns the event id."""
        return await self._publish_one("publish", team_id, payload)

    async def publish_many(self, items: Sequence[tuple[str, str]]) -> list[str]:
        """Up to ``MAX_IN_FLIGHT`` messages awaiting confirmation at once; returns when
        all are confirmed, or raises the first failure once every one is settled."""
        ids: list[str] = []
        for first in range(0, len(items), MAX_IN_FLIGHT):
            chunk = items[first : first + MAX_IN_FLIGHT]
            sends = (self._publish_one("publish_many", team, payload) for team, payload in chunk)
            for outcome in await asyncio.gather(*sends, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome
                ids.append(outcome)
        return ids

    async def publish_transient(self, team_id: str, payload: str) -> int:
        """Live only (not persistent, not mandatory); 0: RabbitMQ does not count listeners."""
        _channel, (_events, live, _dlq) = self._open()
        event_type, event_id = messages.envelope_keys(payload)
        message = messages.live(team_id, payload, event_id, durable=False)
        with self._translated("publish_transient"):
            async with asyncio.timeout(self.timeout):
                await live.publish(message, event_type, mandatory=False, timeout=self.timeout)
        return 0

    async def _publish_one(self, what: str, team_id: str, payload: str) -> str:
        _channel, (_events, live, _dlq) = self._open()
        event_type, event_id = messages.envelope_keys(payload)
        durable = messages.durable_message(team_id, payload.encode(), event_id)
        await self._publish_durable(what, durable, event_type)
        mirror = messages.live(team_id, payload, event_id, durable=True)
        try:
            async with asyncio.timeout(self.timeout):
                await live.publish(mirror, event_type, mandatory=False, timeout=self.timeout)
        except (TimeoutError, amqp_errors.AMQPError, *UNAVAILABLE) as exc:
            # The event is stored; the live mirror is best effort, as on Redis.
            log.warning("broker.live_mirror_failed: %s", type(exc).__name__)
        return event_id or ""

    async def _publish_durable(self, what: str, message: aio_pika.Message, key: str) -> None:
        channel, (events, _live, _dlq) = self._open()
        with self._translated(what):
            async with asyncio.timeout(self.timeout):  # waiting for a reconnection included
                while True:
                    await restored(channel)
                    try:
                        await events.publish(message, key, mandatory=True, timeout=self.timeout)
                        return
                    except amqp_errors.ChannelInvalidStateError:
                        # Closed under us (the server is going away) before it was sent:
                        # try again once the connection is being restored.
                        await asyncio.sleep(RETRY_DELAY)

    # -- consuming ------------------------------------------------------------

    async def ensure_group(self, group: str) -> None:
        """Declare the group's queue with this broker's arguments; other ones are an error."""
        self._open()
        if group in self._groups:
            return
        async with self._own_channel(f"declare the queue of group {group!r}") as channel:
            await self.topology.declare_group(channel, group)
        self._groups.add(group)

    async def backlog(self, group: str) -> tuple[int, int]:
        """(messages ready, consumers) of the group's queue: the lag, for metrics.

        Messages handed out and not yet acked are not counted: AMQP does not
        report them (RabbitMQ's management API does).
        """
        self._open()
        async with self._own_channel(f"read the queue of group {group!r}") as channel:
            queue = await channel.declare_queue(self.topology.queue(group), passive=True)
            declared = await queue.declare(timeout=self.timeout)
        return int(declared.message_count or 0), int(declared.consumer_count or 0)

    async def _routable(self, group: str) -> None:
        """For publishing: the group's queue as it exists (whatever its delivery limit,
        which is the workers' business), declared only if missing."""
        self._open()
        try:
            async with self._own_channel(f"find the queue of group {group!r}") as channel:
                queue = await channel.declare_queue(self.topology.queue(group), passive=True)
                await queue.bind(self.topology.events, "#")
        except BrokerError as exc:
            if not isinstance(exc.__cause__, amqp_errors.ChannelNotFoundEntity):
                raise
            await self.ensure_group(group)

    @contextlib.asynccontextmanager
    async def _own_channel(self, what: str) -> AsyncIterator[AbstractChannel]:
        """A channel for one declaration: an error closes it, not the publishing one."""
        assert self._connection is not None
        with self._translated(what):
            channel = await self._connection.channel()
            try:
                yield channel
            finally:
                if not channel.is_closed:
                    await channel.close()

    async def _consumer(self, group: str, name: str) -> Consumer:
        key = (group, name)
        found = self._consumers.get(key)
        if found is not None:
            return found
        async with self._opening:  # two first consume() calls open one channel
            return self._consumers.get(key) or await self._open_consumer(group, name)

    async def _open_consumer(self, group: str, name: str) -> Consumer:
        await self.ensure_group(group)
        assert self._connection is not None
        with self._translated(f"consume from group {group!r}"):
            channel = await self._connection.channel()
            await channel.set_qos(prefetch_count=self.prefetch)
            # Declared, not just named: a robust channel declares it again on reconnect.
            queue = await self.topology.declare_group(channel, group)
            inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

            async def take(message: AbstractIncomingMessage) -> None:
                inbox.put_nowait(message)

            tag = await queue.consume(take, no_ack=False, consumer_tag=f"{name}-{id(inbox):x}")
        self._consumers[(group, name)] = found = Consumer(channel, queue, tag, inbox)
        return found

    async def consume(
        self, group: str, consumer: str, count: int, block: float | None
    ) -> list[Received]:
        """Up to ``count`` messages; over-received ones go back to be dead-lettered."""
        held = await self._consumer(group, consumer)
        waiting: list[AbstractIncomingMessage] = []
        if held.inbox.empty() and block:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(block):
                    waiting.append(await held.inbox.get())
        out: list[Received] = []
        while len(out) < count and (waiting or not held.inbox.empty()):
            message = waiting.pop() if waiting else held.inbox.get_nowait()
            if stale(message):
                continue  # from a channel lost since: RabbitMQ hands it out again
            receives = int(str((message.headers or {}).get("x-delivery-count") or 0)) + 1
            if receives > self.max_receives:
                # One more return passes x-delivery-limit: the server dead-letters it.
                await self._settle(message, requeue=True)
                continue
            # Shaped like a stream id (receive time in ms): an envelope without a
            # timestamp gets the time it was received, as on Redis it gets the time stored.
            handle = f"{time.time_ns() // 1_000_000}-{next(self._handles)}"
            self._held[handle] = ((group, consumer), message)
            out.append(Received(handle, message.body, receives))
        return out

    async def ack(self, group: str, ids: Sequence[str]) -> None:
        """Ack all at once; one from a channel lost since is skipped (it comes again)."""
        found = [self._held.pop(handle, None) for handle in ids]
        held = [item for item in found if item is not None and not stale(item[1])]
        if len(held) == 1:
            await self._settle(held[0][1])
        elif held:
            await asyncio.gather(*(self._settle(message) for _key, message in held))

    async def _settle(self, message: AbstractIncomingMessage, requeue: bool = False) -> None:
        """Ack (or return) one message; a failure is logged: it will come back."""
        try:
            if requeue:
                await message.nack(requeue=True)
            else:
                await message.ack()
        except (amqp_errors.AMQPError, amqp_errors.ChannelInvalidStateError, *UNAVAILABLE) as exc:
            # Its channel is gone (the connection was lost): RabbitMQ hands it out again.
            log.warning("broker.ack_failed: %s (the message will be received again)", exc)

    async def dead_letter(self, group: str, message: Received, reason: str, error: str) -> str:
        """Publish to the dead letters (confirmed) with the reason, then ack.

        A message this consumer no longer holds (its channel was lost) is left
        alone, returning "": RabbitMQ hands it out again, to be judged again.
        """
        _channel, (_events, _live, dlq) = self._open()
        held = self._held.get(message.id)
        if held is None or stale(held[1]):
            log.warning("broker.dead_letter_skipped: the message is no longer held")
            return ""
        original = held[1]
        body = message.payload or b""
        dead_id = original.message_id or messages.body_id(body)
        team = str((original.headers or {}).get("team_id") or "")
        letter = messages.dead_message(body, dead_id, team, group, reason, error)
        with self._translated("dead letter"):
            await dlq.publish(letter, "", timeout=self.timeout)
        await self.ack(group, [message.id])
        return dead_id

    def waiting(self, group: str, consumer: str) -> int:
        """Messages delivered to ``consumer`` (prefetched) that ``consume`` has not returned."""
        found = self._consumers.get((group, consumer))
        return 0 if found is None else found.inbox.qsize()

    def holding(self, group: str, consumer: str) -> list[str]:
        """Handles of the messages ``consumer`` received and has not settled."""
        return [h for h, (key, _m) in self._held.items() if key == (group, consumer)]

    async def requeue(self, group: str, ids: Sequence[str]) -> None:
        """Hand messages back unsettled: received again, counting toward the delivery limit."""
        for handle in ids:
            held = self._held.pop(handle, None)
            if held is not None:
                await self._settle(held[1], requeue=True)

    @property
    def reachable(self) -> bool:
        """Whether the connection is up now (not while aio-pika is restoring it)."""
        return self._connection is not None and self._connection.connected.is_set()

    async def release(self, group: str, consumer: str) -> None:
        """Cancel and close the consumer's channel: RabbitMQ requeues what it held."""
        held = self._consumers.pop((group, consumer), None)
        if held is None:
            return
        for handle in self.holding(group, consumer):
            del self._held[handle]
        with contextlib.suppress(amqp_errors.AMQPError, *UNAVAILABLE):
            await held.channel.close()

    # -- dead letters ---------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _dead_queue(self) -> AsyncIterator[AbstractQueue]:
        """The dead-letter queue on a channel of its own: what is not acked goes back."""
        assert self._connection is not None
        self._open()
        with self._translated("read the dead letters"):
            channel = await self._connection.channel()
            try:
                yield await channel.get_queue(self.topology.dlq, ensure=False)
            finally:
                with contextlib.suppress(amqp_errors.AMQPError, *UNAVAILABLE):
                    await channel.close()

    async def dead_letter_count(self) -> int:
        """How many dead letters wait in ``<prefix>.dlq`` (not counting any being read)."""
        async with self._dead_queue() as queue:
            declared = await queue.declare(timeout=self.timeout)  # passive: only reads
        return int(declared.message_count or 0)

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        async with self._dead_queue() as queue:
            while len(out) < count:
                message = await queue.get(no_ack=False, fail=False, timeout=self.timeout)
                if message is None:
                    break
                out.append(messages.read_dead(message, self.max_receives))
        return out

    async def redrive(self, ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """Publish dead letters to the events exchange again, then drop them here."""
        wanted = None if ids is None else set(ids)
        moved: list[tuple[str, str]] = []
        async with self._dead_queue() as queue:
            while True:
                message = await queue.get(no_ack=False, fail=False, timeout=self.timeout)
                if message is None:
                    break
                letter = messages.read_dead(message, self.max_receives)
                if wanted is not None and letter.id not in wanted:
                    continue
                await self._publish_durable("redrive", *messages.redriven(message, letter))
                await message.ack()
                moved.append((letter.id, letter.id))
        return moved

    # -- live mirror ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def live(self) -> AsyncIterator[AsyncIterator[bytes]]:
        """An exclusive auto-delete queue bound to ``<prefix>.live``, for this reader only."""
        self._open()
        assert self._connection is not None
        inbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10000)

        async def take(message: AbstractIncomingMessage) -> None:
            with contextlib.suppress(asyncio.QueueFull):  # best effort, as Pub/Sub
                inbox.put_nowait(message.body)

        with self._translated("subscribe to the live mirror"):
            channel = await self._connection.channel()
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(self.topology.live, "#")
            await queue.consume(take, no_ack=True)
        try:
            yield drain(inbox)
        finally:
            with contextlib.suppress(amqp_errors.AMQPError, *UNAVAILABLE):
                await channel.close()


if TYPE_CHECKING:  # mypy checks that RabbitMQ keeps the Broker protocol
    _CONFORMS: type[Broker] = RabbitMQ
