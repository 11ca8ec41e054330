"""The broker contract: every case runs on Redis Streams and on RabbitMQ.

As FastStream tests its brokers: one suite, parametrized over the backends
(``backend`` fixture), against the real servers.
"""

from __future__ import annotations

import asyncio
import inspect
import json

import pytest

from eventbus.brokers import Broker, RedisStreams
from eventbus.brokers.rabbitmq import RabbitMQ
from eventbus.errors import BrokerError
from eventbus.live import parse_live

from .conftest import GROUP, MAX_RECEIVES, Backend, dead_letter_arrival, envelope, receive

pytestmark = pytest.mark.integration

PROTOCOL_METHODS = [
    name for name, member in vars(Broker).items() if callable(member) and not name.startswith("_")
]


@pytest.mark.parametrize("backend_class", [RedisStreams, RabbitMQ], ids=["redis", "rabbitmq"])
def test_each_backend_has_every_method_of_the_protocol(backend_class: type) -> None:
    assert {"publish", "consume", "ack", "dead_letters", "redrive", "live"} <= set(PROTOCOL_METHODS)
    for name in PROTOCOL_METHODS:
        wanted = inspect.signature(getattr(Broker, name))
        method = getattr(backend_class, name)
        given = inspect.signature(method)
        for parameter in wanted.parameters:
            assert parameter in given.parameters, f"{backend_class.__name__}.{name}({parameter})"
        is_async = inspect.iscoroutinefunction(getattr(Broker, name))
        assert inspect.iscoroutinefunction(method) == is_async, name


async def test_backend_satisfies_the_protocol(backend: Backend) -> None:
    assert isinstance(backend.broker, Broker)


async def test_a_published_event_is_received_once_and_gone_after_ack(backend: Backend) -> None:
    broker = backend.broker
    payload = envelope(1)
    message_id = await broker.publish("team-1", payload)
    assert message_id
    [message] = await receive(broker, "one", 1)
    assert json.loads(message.payload or b"") == json.loads(payload)
    assert message.receives == 1
    await broker.ack(GROUP, [message.id])
    await broker.release(GROUP, "one")
    assert await broker.consume(GROUP, "two", 10, 0.3) == []


async def test_publish_returns_the_stream_id_or_on_rabbitmq_the_event_id(backend: Backend) -> None:
    payload = envelope(2)
    returned = await backend.broker.publish("team-1", payload)
    if backend.kind == "rabbitmq":
        assert returned == json.loads(payload)["id"]
    else:
        assert returned.count("-") == 1  # a stream id


async def test_publish_many_confirms_every_event_in_order(backend: Backend) -> None:
    broker = backend.broker
    payloads = [envelope(number) for number in range(40)]
    ids = await broker.publish_many([("team-1", payload) for payload in payloads])
    assert len(ids) == 40 and len(set(ids)) == 40
    got = await receive(broker, "batch", 40)
    assert [json.loads(m.payload)["id"] for m in got] == [json.loads(p)["id"] for p in payloads]
    await broker.ack(GROUP, [m.id for m in got])
    assert await broker.publish_many([]) == []


async def test_durable_publish_is_mirrored_live_and_transient_goes_only_there(
    backend: Backend,
) -> None:
    broker = backend.broker
    durable, transient = envelope(1, team="team-a"), envelope(2, team="team-b", event="host.up")
    async with broker.live() as feed:
        await broker.publish_transient("team-b", transient)
        await broker.publish("team-a", durable)
        async with asyncio.timeout(10):
            seen = [parse_live(await anext(feed)) for _ in range(2)]
    assert {m.event.id for m in seen} == {json.loads(durable)["id"], json.loads(transient)["id"]}
    [stored] = await receive(broker, "live", 1)
    assert json.loads(stored.payload)["id"] == json.loads(durable)["id"]
    await broker.ack(GROUP, [stored.id])
    assert await broker.consume(GROUP, "live", 10, 0.3) == []


async def test_a_message_never_acked_is_received_again_after_its_consumer_stops(
    backend: Backend,
) -> None:
    broker = backend.broker
    await broker.publish("team-1", envelope(7))
    [first] = await receive(broker, "crashing", 1)
    await broker.release(GROUP, "crashing")
    other = await backend.new()
    [again] = await receive(other, "survivor", 1)
    assert again.payload == first.payload
    assert again.receives == 2
    await other.ack(GROUP, [again.id])
    assert await other.consume(GROUP, "survivor", 10, 0.3) == []


async def test_a_poison_message_becomes_a_dead_letter_with_the_reason_and_redrives(
    backend: Backend,
) -> None:
    broker = backend.broker
    payload = envelope(9)
    await broker.publish("team-1", payload)
    for attempt in range(1, MAX_RECEIVES + 1):  # every receiver dies holding it
        [message] = await receive(broker, f"attempt-{attempt}", 1)
        assert message.receives == attempt
        await broker.release(GROUP, f"attempt-{attempt}")
    async with dead_letter_arrival(backend) as arrived:
        assert await broker.consume(GROUP, "last", 10, 0.5) == []
        await asyncio.wait_for(arrived.wait(), 10)
    await broker.release(GROUP, "last")  # RabbitMQ would push the redriven one to it
    [dead] = await broker.dead_letters()
    assert dead.reason in ("max_receives", "delivery_limit")
    assert str(MAX_RECEIVES) in dead.error and "acknowledged" in dead.error
    assert json.loads(dead.payload) == json.loads(payload)
    assert await broker.dead_letters() == [dead]  # listing leaves them in place
    [(dead_id, _new_id)] = await broker.redrive([dead.id])
    assert dead_id == dead.id
    assert await broker.dead_letters() == []
    [back] = await receive(broker, "after-fix", 1)
    assert json.loads(back.payload) == json.loads(payload) and back.receives == 1


async def test_a_consumer_sets_a_message_aside_with_its_own_reason(backend: Backend) -> None:
    broker = backend.broker
    await broker.publish("team-1", envelope(3))
    [message] = await receive(broker, "validator", 1)
    await broker.dead_letter(GROUP, message, "invalid", "field 'resource' is missing")
    [dead] = await broker.dead_letters()
    assert (dead.reason, dead.error) == ("invalid", "field 'resource' is missing")
    assert dead.payload == message.payload and dead.at > 0
    await broker.release(GROUP, "validator")
    assert await broker.consume(GROUP, "again", 10, 0.3) == []
    assert len(await broker.redrive()) == 1
    assert len(await receive(broker, "again", 1)) == 1


async def test_a_refused_publish_raises(backend: Backend) -> None:
    refusing = await backend.refusing()
    with pytest.raises(BrokerError):
        await refusing.publish("team-1", envelope(1))
    with pytest.raises(BrokerError):
        await refusing.publish_many([("team-1", envelope(2)), ("team-1", envelope(3))])
