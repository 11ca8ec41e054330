"""One ``Backend`` per broker, so a contract test runs unchanged on each.

Every backend works under the test's own prefix (Redis keys, RabbitMQ
exchanges and queues) and removes all of it afterwards. The servers are the
real ones (``tests/conftest.py``: skipped when absent, failed in CI).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractIncomingMessage

from eventbus.brokers import Broker, RedisStreams
from eventbus.brokers.cluster import scan_keys
from eventbus.brokers.embedded import EmbeddedRedis
from eventbus.brokers.rabbitmq import RabbitMQ, Topology
from eventbus.brokers.redis_streams import connect
from eventbus.envelope import Event, encode
from eventbus.keys import Keys

GROUP = "delivery"
MAX_RECEIVES = 3
PARTITIONS = 3


@dataclass
class Backend:
    """A broker under test, and the few things done differently on each engine."""

    kind: str
    url: str
    prefix: str
    new: Callable[[], Awaitable[Broker]]  # another broker on the same prefix (its own client)
    refusing: Callable[[], Awaitable[Broker]]  # a broker whose durable publish is refused
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    broker: Broker = field(init=False)


def envelope(number: int = 0, team: str = "team-1", event: str = "capsule.create") -> str:
    ev = Event(event=event, team_id=team, resource={"id": f"c{number}", "type": "capsule"})
    return encode(ev).decode()


async def receive(broker: Broker, consumer: str, count: int, timeout: float = 10) -> list[Any]:
    """Consume until ``count`` messages came (or the timeout), without acking."""
    got: list[Any] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            got += await broker.consume(GROUP, consumer, count - len(got), 1.0)
    return got


@contextlib.asynccontextmanager
async def dead_letter_arrival(backend: Backend) -> AsyncIterator[asyncio.Event]:
    """Set when a dead letter arrives: RabbitMQ dead-letters after the consumer returned."""
    arrived = asyncio.Event()
    if backend.kind != "rabbitmq":  # consume itself wrote it
        arrived.set()
        yield arrived
        return
    connection = await aio_pika.connect(backend.url)
    try:
        channel = await connection.channel()
        copies = await channel.declare_queue(exclusive=True, auto_delete=True)
        await copies.bind(Topology(backend.prefix).dlq)  # a fanout: a copy of each

        async def seen(message: AbstractIncomingMessage) -> None:
            arrived.set()

        await copies.consume(seen, no_ack=True)
        yield arrived
    finally:
        await connection.close()


@pytest.fixture(params=["redis", "embedded", "rabbitmq", "cluster", "partitioned"])
async def backend(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Backend]:
    """Redis, the embedded development server (fakeredis) behind the same backend,
    RabbitMQ, a real local Redis Cluster (through ``connect()``), and Redis with
    ``PARTITIONS`` partitions (``broker.partitions``)."""
    if request.param == "rabbitmq":
        async with _rabbitmq_backend(request.getfixturevalue("amqp_url"), prefix) as made:
            made.broker = await made.new()
            yield made
        return
    with contextlib.ExitStack() as servers:
        if request.param == "cluster":
            url = request.getfixturevalue("cluster_url")
        elif request.param in ("redis", "partitioned"):
            url = request.getfixturevalue("redis_url")
        else:
            url = servers.enter_context(EmbeddedRedis()).url
        parts = PARTITIONS if request.param == "partitioned" else 1
        async with _redis_backend(url, prefix, parts) as made:
            made.kind = request.param
            made.broker = await made.new()
            yield made


class _Managed:
    def __init__(self, backend: Backend, cleanup: Callable[[], Awaitable[None]]) -> None:
        self.backend = backend
        self.cleanup = cleanup

    async def __aenter__(self) -> Backend:
        return self.backend

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.backend.stack.aclose()
        finally:
            await self.cleanup()


def _redis_backend(url: str, prefix: str, partitions: int = 1) -> _Managed:
    clients: list[aioredis.Redis] = []

    async def new() -> Broker:
        client = connect(url)
        clients.append(client)
        streams = RedisStreams(
            client,
            Keys(prefix),
            claim_idle=0.0,
            max_receives=MAX_RECEIVES,
            partitions=partitions,
        )
        await streams.ensure_group(GROUP)
        return streams

    async def refusing() -> Broker:
        # The streams' keys hold a string: Redis answers WRONGTYPE to XADD.
        broker = await new()
        for keys in Keys(prefix).partitions(partitions):
            await clients[-1].delete(keys.events)
            await clients[-1].set(keys.events, "not a stream")
        return broker

    async def cleanup() -> None:
        client = connect(url)
        keys = [key async for key in scan_keys(client, f"{{{prefix}}}*")]
        keys += [key async for key in scan_keys(client, f"{{{prefix}#*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        for opened in clients:
            await opened.aclose()

    backend = Backend("redis", url, prefix, new, refusing)
    return _Managed(backend, cleanup)


def _rabbitmq_backend(url: str, prefix: str) -> _Managed:
    unroutable = f"{prefix}-unroutable"

    async def new() -> Broker:
        return await _opened(backend, url, prefix)

    async def refusing() -> Broker:
        # No group queue is declared (group=None): the message is returned.
        return await _opened(backend, url, unroutable, group=None)

    async def cleanup() -> None:
        await delete_topology(url, prefix, [GROUP, "other"])
        await delete_topology(url, unroutable, [])

    backend = Backend("rabbitmq", url, prefix, new, refusing)
    return _Managed(backend, cleanup)


async def _opened(backend: Backend, url: str, prefix: str, **options: Any) -> Broker:
    options = {"group": GROUP, "max_receives": MAX_RECEIVES, "prefetch": 50, **options}
    broker = RabbitMQ(url, prefix, **options)
    return await backend.stack.enter_async_context(broker)


async def delete_topology(url: str, prefix: str, groups: list[str]) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        await Topology(prefix).delete(channel, groups)
    finally:
        await connection.close()
