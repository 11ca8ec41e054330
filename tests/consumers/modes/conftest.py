"""One ``Mode`` per broker kind, so a worker-level test runs unchanged on each.

``mode`` is parametrized over ``redis`` (Redis Streams) and ``rabbitmq``
(events through RabbitMQ, records in Redis). Each works under the test's own
prefix and removes its Redis keys and RabbitMQ queues and exchanges after.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import redis.asyncio as aioredis
import yaml

from consumers.channels.registry import build_channels
from consumers.daemon import _worker, make_channel_deps, make_http_client
from consumers.worker import Worker
from eventbus.brokers.rabbitmq import RabbitMQ, Topology
from eventbus.config import load_settings
from eventbus.keys import Keys
from publishers import Publisher

from ..sink import Sink

GROUP = "delivery"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Mode:
    kind: str
    redis: aioredis.Redis
    redis_url: str
    prefix: str
    amqp_url: str
    sink: Sink
    tmp: Path

    def config(self, **consumer: Any) -> Path:
        """A config file (webhook to the sink, one catch-all subscription) for this mode."""
        data = {
            "broker": {
                "kind": self.kind,
                "redis_url": self.redis_url,
                "amqp_url": self.amqp_url,
                "prefix": self.prefix,
            },
            "consumer": {"block": "200ms", "claim_interval": "500ms", **consumer},
            "http": {"enabled": False},
            "security": {"allow_private_targets": True},
            "logging": {"format": "json", "deliveries": "all"},
            "channels": [
                {"name": "hook", "type": "webhook", "url": self.sink.url, "secret": SECRET}
            ],
            "subscriptions": [{"name": "all", "team": "*", "events": ["*"], "channels": ["hook"]}],
        }
        path = self.tmp / "eventbus.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    async def publish(self, path: Path, events: list[Any]) -> None:
        async with Publisher(load_settings(path)) as bus:
            await bus.publish_many(events)

    @contextlib.asynccontextmanager
    async def worker(self, path: Path, **consumer: Any) -> AsyncIterator[Worker]:
        """An in-process worker of this mode (started; its broker closed after)."""
        settings = load_settings(path)
        settings = settings.model_copy(
            update={"consumer": settings.consumer.model_copy(update=consumer)}
        )
        http = make_http_client(settings)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(http.aclose)
            broker = None
            if self.kind == "rabbitmq":
                broker = await stack.enter_async_context(RabbitMQ.from_settings(settings))
            w = _worker(
                settings,
                redis=self.redis,
                broker=broker,
                channels=build_channels(settings, make_channel_deps(settings, http)),
            )
            await w.start()
            yield w

    async def unsettled(self) -> int:
        """Messages of the group not settled for good (no consumer holding any)."""
        if self.kind == "redis":
            info = await self.redis.xpending(Keys(self.prefix).events, GROUP)
            groups = await self.redis.xinfo_groups(Keys(self.prefix).events)
            lag = sum(int(g.get("lag") or 0) for g in groups if g["name"] == GROUP.encode())
            return int(info["pending"]) + lag
        connection = await aio_pika.connect(self.amqp_url)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(Topology(self.prefix).queue(GROUP), passive=True)
            return int(queue.declaration_result.message_count or 0)
        finally:
            await connection.close()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture(params=["redis", "rabbitmq"])
async def mode(
    request: pytest.FixtureRequest,
    redis: aioredis.Redis,
    redis_url: str,
    prefix: str,
    sink: Sink,
    tmp_path: Path,
) -> AsyncIterator[Mode]:
    """Redis Streams, or RabbitMQ for the events (records in Redis either way)."""
    rabbit = request.param == "rabbitmq"
    amqp_url = request.getfixturevalue("amqp_url") if rabbit else "amqp://127.0.0.1:1/"
    yield Mode(request.param, redis, redis_url, prefix, amqp_url, sink, tmp_path)
    if rabbit:
        await delete_topology(amqp_url, prefix)


async def delete_topology(url: str, prefix: str) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        await Topology(prefix).delete(channel, [GROUP])
    finally:
        await connection.close()
