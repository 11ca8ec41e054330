"""What only the RabbitMQ backend has: its topology, nacks, outages, credentials."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest

from eventbus.brokers.rabbitmq import RabbitMQ, Topology
from eventbus.errors import BrokerError, BrokerUnavailable, EventBusError
from tests.consumers.server.test_probes import Proxy

from .conftest import GROUP, delete_topology, envelope, receive

pytestmark = pytest.mark.integration


@pytest.fixture
async def rabbit(amqp_url: str, prefix: str) -> AsyncIterator[RabbitMQ]:
    try:
        async with RabbitMQ(amqp_url, prefix, max_receives=3, prefetch=10) as broker:
            yield broker
    finally:
        await delete_topology(amqp_url, prefix, [GROUP, "other"])


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(amqp_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


def with_port(url: str, port: int, password: str | None = None) -> str:
    parts = urlsplit(url)
    user = parts.username or "guest"
    secret = password if password is not None else parts.password or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{secret}@127.0.0.1:{port}"))


async def test_topology_is_declared_as_documented_and_again_without_error(
    rabbit: RabbitMQ, amqp_url: str, prefix: str, channel: aio_pika.abc.AbstractChannel
) -> None:
    names = Topology(prefix)
    async with RabbitMQ(amqp_url, prefix, max_receives=3):  # a second process: same topology
        pass
    for exchange in (names.events, names.live, names.dlq):
        await channel.get_exchange(exchange, ensure=True)  # passive: raises if missing
    group = await channel.declare_queue(
        names.queue(GROUP), durable=True, arguments=Topology(prefix, 3).group_arguments()
    )
    assert group.arguments is not None and group.arguments["x-queue-type"] == "quorum"
    # Routing key = event type: a queue bound to "host.*" sees only host events.
    hosts = await channel.declare_queue(exclusive=True)
    await hosts.bind(names.events, "host.*")
    await rabbit.publish("team-1", envelope(1, event="capsule.create"))
    await rabbit.publish("team-1", envelope(2, event="host.down"))
    message = await hosts.get(timeout=5)
    assert json.loads(message.body)["event"] == "host.down"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.message_id == json.loads(message.body)["id"]
    assert await hosts.get(fail=False) is None


async def test_another_delivery_limit_stops_a_consumer_not_a_publisher(
    rabbit: RabbitMQ, amqp_url: str, prefix: str
) -> None:
    # The queue exists with x-delivery-limit 3 (the fixture's max_receives).
    async with RabbitMQ(amqp_url, prefix, max_receives=7) as other:
        assert await other.publish("team-1", envelope(1))  # publishing takes the queue as is
        with pytest.raises(BrokerError, match=r"other arguments \(e.g. another consumer.max_"):
            await other.consume(GROUP, "mismatched", 10, 0.1)
        assert await other.publish("team-1", envelope(2))  # the publishing channel is intact
    [first, second] = await rabbit.consume(GROUP, "matching", 10, 5)
    assert first.receives == second.receives == 1


async def test_a_lost_message_is_not_dead_lettered_twice(
    rabbit: RabbitMQ, amqp_url: str, prefix: str
) -> None:
    await rabbit.publish("team-1", envelope(1))
    [held] = await rabbit.consume(GROUP, "slow", 10, 5)
    await rabbit.release(GROUP, "slow")  # gone back to the queue meanwhile
    assert await rabbit.dead_letter(GROUP, held, "invalid", "late") == ""
    assert await rabbit.dead_letters() == []
    [again] = await rabbit.consume(GROUP, "next", 10, 5)
    assert again.receives == 2


async def test_a_nacked_publish_raises(
    rabbit: RabbitMQ, prefix: str, channel: aio_pika.abc.AbstractChannel
) -> None:
    # A full queue that rejects publishes makes RabbitMQ nack the message.
    full = await channel.declare_queue(
        f"{prefix}.other",
        durable=True,
        arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    await full.bind(Topology(prefix).events, "#")
    with pytest.raises(BrokerError, match="refused the message"):
        await rabbit.publish("team-1", envelope(1))


async def test_an_unroutable_publish_says_how_to_fix_it(amqp_url: str, prefix: str) -> None:
    try:
        async with RabbitMQ(amqp_url, prefix, group=None) as broker:
            with pytest.raises(BrokerError, match=r"unroutable.*eventbus broker setup"):
                await broker.publish("team-1", envelope(1))
            with pytest.raises(BrokerError, match="not an envelope"):
                await broker.publish("team-1", '{"no": "event"}')
    finally:
        await delete_topology(amqp_url, prefix, [])


async def test_a_closed_connection_hands_unacked_messages_to_another_process(
    rabbit: RabbitMQ, amqp_url: str, prefix: str
) -> None:
    await rabbit.publish("team-1", envelope(1))
    crashing = await RabbitMQ(amqp_url, prefix, max_receives=3).__aenter__()
    [held] = await crashing.consume(GROUP, "crashing", 10, 5)
    await crashing.close()  # the process is gone: no ack, no release
    [again] = await rabbit.consume(GROUP, "survivor", 10, 5)
    assert (again.payload, again.receives) == (held.payload, 2)
    await rabbit.ack(GROUP, [again.id])


async def test_the_connection_comes_back_after_an_outage(amqp_url: str, prefix: str) -> None:
    parts = urlsplit(amqp_url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    await proxy.start()
    broker = RabbitMQ(with_port(amqp_url, proxy.port), prefix, max_receives=3, timeout=2)
    try:
        await broker.start()
        await broker.publish("team-1", envelope(1))
        [held] = await broker.consume(GROUP, "steady", 10, 5)
        await proxy.stop()
        for number in (2, 3):  # down, then reconnecting: each fails within the timeout
            async with asyncio.timeout(2 * 2 + 1):
                with pytest.raises(BrokerError):
                    await broker.publish("team-1", envelope(number))
        await proxy.start()
        # Reconnected: the unacked message comes again, the stale handle acks nothing.
        [again] = await broker.consume(GROUP, "steady", 10, 15)
        assert (again.payload, again.receives) == (held.payload, 2)
        await broker.ack(GROUP, [held.id, again.id])
        await broker.publish("team-1", envelope(3))
    finally:
        await broker.close()
        await proxy.stop()
        await delete_topology(amqp_url, prefix, [GROUP])


async def test_the_password_is_never_shown(amqp_url: str, prefix: str) -> None:
    closed = with_port(amqp_url, 1, password="s3cret-pw")
    broker = RabbitMQ(closed, prefix, timeout=2)
    assert "s3cret-pw" not in repr(broker)
    with pytest.raises(BrokerUnavailable) as refused:
        await broker.start()
    assert "s3cret-pw" not in str(refused.value) and "***" in str(refused.value)
    wrong = RabbitMQ(with_port(amqp_url, urlsplit(amqp_url).port or 5672, "s3cret-pw"), prefix)
    with pytest.raises(BrokerError) as denied:
        await wrong.start()
    assert "s3cret-pw" not in str(denied.value)


async def test_using_a_broker_before_start_or_after_close_is_a_clear_error(
    amqp_url: str, prefix: str
) -> None:
    broker = RabbitMQ(amqp_url, prefix)
    with pytest.raises(EventBusError, match="not started"):
        await broker.publish("team-1", envelope(1))
    await broker.close()
    with pytest.raises(EventBusError, match="closed"):
        await broker.start()


async def test_publish_transient_reaches_only_live_readers(rabbit: RabbitMQ) -> None:
    async with rabbit.live() as feed:
        assert await rabbit.publish_transient("team-1", envelope(5, event="host.up")) == 0
        async with asyncio.timeout(5):
            message = json.loads(await anext(feed))
    assert "stream_id" not in message and message["event"]["event"] == "host.up"
    assert await rabbit.consume(GROUP, "none", 10, 0.3) == []


async def test_the_backlog_counts_messages_ready_and_consumers(rabbit: RabbitMQ) -> None:
    await rabbit.publish_many([("team-1", envelope(number)) for number in range(3)])
    assert await rabbit.backlog(GROUP) == (3, 0)
    assert len(await receive(rabbit, "busy", 3)) == 3  # held, not acked
    assert await rabbit.backlog(GROUP) == (0, 1)


async def test_a_foreign_message_that_is_no_envelope_is_set_aside_and_redriven_as_it_was(
    rabbit: RabbitMQ, prefix: str, channel: aio_pika.abc.AbstractChannel
) -> None:
    events = await channel.get_exchange(Topology(prefix).events)
    await events.publish(aio_pika.Message(b"\xffnot json"), "legacy.thing")  # another producer
    [message] = await rabbit.consume(GROUP, "validator", 10, 5)
    dead_id = await rabbit.dead_letter(GROUP, message, "invalid_envelope", "not JSON")
    assert dead_id  # aiormq gives every message an id
    [(moved, _)] = await rabbit.redrive([dead_id])
    assert moved == dead_id
    [back] = await rabbit.consume(GROUP, "validator", 10, 5)
    assert back.payload == b"\xffnot json"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_every_confirmed_event_survives_a_broker_restart_mid_load(
    amqp_url: str, prefix: str
) -> None:
    confirmed: set[str] = set()
    restarted = asyncio.Event()

    async def rabbitmqctl(command: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            "rabbitmqctl", command, stdout=asyncio.subprocess.DEVNULL
        )
        assert await proc.wait() == 0, f"rabbitmqctl {command} failed"

    async def restart() -> None:
        await rabbitmqctl("stop_app")
        await rabbitmqctl("start_app")
        restarted.set()

    broker = RabbitMQ(amqp_url, prefix, max_receives=3, timeout=3)
    try:
        await broker.start()
        async with asyncio.timeout(90):
            after = 0
            restarting = asyncio.create_task(restart())
            while after < 10:  # publish all along, until 10 went through after the restart
                try:
                    confirmed.add(await broker.publish("team-1", envelope(len(confirmed))))
                    after += restarted.is_set()
                except BrokerError:  # down for longer than the timeout: said so
                    continue
            await restarting
        # Every stored one (some whose publish raised may be stored too: at least once).
        stored: set[str] = set()
        while batch := await broker.consume(GROUP, "after", 100, 2.0):
            stored |= {json.loads(message.payload)["id"] for message in batch}
            await broker.ack(GROUP, [message.id for message in batch])  # room for more
        assert confirmed <= stored  # a publish that returned is never lost
    finally:
        if not restarted.is_set():  # never leave the server stopped
            await rabbitmqctl("start_app")
        await broker.close()
        await delete_topology(amqp_url, prefix, [GROUP])
