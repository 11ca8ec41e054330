"""The publisher client with ``broker.kind: rabbitmq``: same API, events in RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import aio_pika
import pytest

from eventbus.brokers.rabbitmq import RabbitMQ, Topology
from eventbus.envelope import Event
from eventbus.errors import BrokerError
from eventbus.settings import Settings
from publishers import Publisher, SyncPublisher

pytestmark = pytest.mark.integration

GROUP = "delivery"


def ev(resource: str = "c1") -> Event:
    return Event(event="capsule.create", team_id="t1", resource={"id": resource, "type": "capsule"})


@pytest.fixture
async def settings(amqp_url: str, redis_url: str, prefix: str) -> AsyncIterator[Settings]:
    yield Settings(
        broker={"kind": "rabbitmq", "amqp_url": amqp_url, "redis_url": redis_url, "prefix": prefix}
    )
    connection = await aio_pika.connect(amqp_url)
    try:
        await Topology(prefix).delete(await connection.channel(), [GROUP])
    finally:
        await connection.close()


async def queued(settings: Settings, count: int) -> list[dict[str, object]]:
    """The bodies of ``count`` messages of the group queue, acked."""
    async with RabbitMQ.from_settings(settings) as broker:
        got = []
        async with asyncio.timeout(10):
            while len(got) < count:
                got += await broker.consume(GROUP, "check", count - len(got), 1.0)
        await broker.ack(GROUP, [m.id for m in got])
    return [json.loads(m.payload or b"") for m in got]


async def test_every_publish_call_goes_to_rabbitmq_with_the_event_id(settings: Settings) -> None:
    one, two, three = ev("c1"), ev("c2"), ev("c3")
    async with Publisher(settings) as bus:
        assert await bus.publish(one) == one.id
        assert await bus.publish_many([two, three]) == [two.id, three.id]
        alert_id = await bus.trigger_alert(
            "t1", "disk:h1", event="host.disk", resource="host:h1", error="full"
        )
        assert (
            await bus.publish_transient(
                Event(
                    event="capsule.state.changed", team_id="t1", resource={"id": "c", "type": "c"}
                )
            )
            == 0
        )  # RabbitMQ does not count listeners
    bodies = await queued(settings, 4)
    assert {b["id"] for b in bodies} == {one.id, two.id, three.id, alert_id}
    assert "guest:guest" not in repr(bus) and "guest:***" in repr(bus)


async def test_an_unreachable_rabbitmq_raises_broker_error(settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    broker = settings.broker.model_dump() | {
        "amqp_url": f"amqp://guest:guest@127.0.0.1:{port}/",
        "socket_timeout": 2.0,
    }
    broker["redis_url"] = settings.broker.redis_url.get_secret_value()
    bus = Publisher(Settings(broker=broker))
    with pytest.raises(BrokerError, match=f"127.0.0.1:{port}") as caught:
        await bus.publish(ev())
    assert "guest:guest" not in str(caught.value) and "guest:guest" not in repr(bus)
    await bus.aclose()


def test_the_sync_publisher_works_on_rabbitmq_too(settings: Settings) -> None:
    event = ev()
    with SyncPublisher(settings) as bus:
        assert bus.publish(event) == event.id
    [body] = asyncio.run(queued(settings, 1))
    assert body["id"] == event.id
