"""The publisher client against a real Redis (and the embedded fakeredis server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis as sync_redis
import redis.asyncio as aioredis

from eventbus.brokers.embedded import EmbeddedRedis
from eventbus.envelope import Event, Severity, decode, encode
from eventbus.errors import (
    BrokerUnavailable,
    CatalogError,
    EnvelopeError,
    EventBusError,
)
from eventbus.keys import Keys
from eventbus.settings import Settings
from publishers import Publisher, SyncPublisher

pytestmark = pytest.mark.integration

CLOSED = "redis://:hunter2pw@127.0.0.1:1/0"


def make_event(event_type: str = "capsule.create", team: str = "team-1", **kw: Any) -> Event:
    return Event(
        event=event_type,
        team_id=team,
        outcome=kw.pop("outcome", "success"),
        actor={"type": "user", "id": "u1"},
        resource={"id": kw.pop("resource_id", "c1"), "type": "capsule"},
        metadata=kw.pop("metadata", {"region": "eu-west"}),
        **kw,
    )


@pytest.fixture
async def publisher(make_settings: Callable[..., Settings]) -> AsyncIterator[Publisher]:
    async with Publisher(make_settings()) as bus:
        yield bus


class Live:
    """A subscription to one live channel, opened before publishing."""

    def __init__(self, pubsub: Any) -> None:
        self.pubsub = pubsub

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
                if msg is not None:
                    return dict(json.loads(msg["data"]))


@pytest.fixture
async def subscribe(redis: aioredis.Redis, prefix: str) -> AsyncIterator[Callable[..., Any]]:
    opened: list[Any] = []

    async def subscribe(team: str) -> Live:
        pubsub = redis.pubsub()
        await pubsub.subscribe(f"{prefix}:live:{team}")
        async with asyncio.timeout(5):
            while (await pubsub.get_message(timeout=5)) is None:
                pass  # the subscribe confirmation: the server has registered us
        opened.append(pubsub)
        return Live(pubsub)

    yield subscribe
    for pubsub in opened:
        await pubsub.aclose()


async def test_durable_publish_lands_in_the_stream_with_the_exact_layout(
    publisher: Publisher, redis: aioredis.Redis, prefix: str
) -> None:
    ev = make_event()
    stream_id = await publisher.publish(ev)
    entries = await redis.xrange(Keys(prefix).events)
    assert len(entries) == 1
    entry_id, fields = entries[0]
    assert entry_id.decode() == stream_id
    assert list(fields) == [b"payload"]
    assert fields[b"payload"] == encode(ev)
    assert decode(fields[b"payload"]) == ev


async def test_live_mirror_carries_the_stream_id(
    publisher: Publisher, subscribe: Callable[..., Any]
) -> None:
    team1 = await subscribe("team-1")
    team2 = await subscribe("team-2")
    ev = make_event(team="team-1")
    stream_id = await publisher.publish(ev)
    message = await team1.next()
    assert message == {"stream_id": stream_id, "event": json.loads(encode(ev))}
    other = make_event(team="team-2")
    other_id = await publisher.publish(other)
    # team-2's listener sees only team-2's event (the first message it gets)
    assert await team2.next() == {"stream_id": other_id, "event": json.loads(encode(other))}


async def test_dict_events_are_validated_and_published(
    publisher: Publisher, redis: aioredis.Redis, prefix: str
) -> None:
    stream_id = await publisher.publish(
        {"event": "host.down", "team_id": "ops", "resource": {"id": "h1", "type": "host"}}
    )
    [(entry_id, fields)] = await redis.xrange(Keys(prefix).events)
    assert entry_id.decode() == stream_id
    assert decode(fields[b"payload"]).event == "host.down"
    with pytest.raises(EnvelopeError):
        await publisher.publish({"event": "host.down"})
    assert await redis.xlen(Keys(prefix).events) == 1


async def test_severity_is_published_and_a_bad_one_refused(
    publisher: Publisher, redis: aioredis.Redis, prefix: str
) -> None:
    host = {"event": "host.down", "team_id": "ops", "resource": {"id": "h1", "type": "host"}}
    await publisher.publish({**host, "severity": "critical"})
    await publisher.publish(make_event(severity=Severity.WARNING))
    await publisher.publish(make_event(outcome="error"))
    stored = [decode(f[b"payload"]) for _, f in await redis.xrange(Keys(prefix).events)]
    assert [(e.severity, e.level) for e in stored] == [
        (Severity.CRITICAL, Severity.CRITICAL),
        (Severity.WARNING, Severity.WARNING),
        (None, Severity.ERROR),  # absent: nothing written, error by the outcome
    ]
    with pytest.raises(EnvelopeError) as refused:
        await publisher.publish({**host, "severity": "urgent"})
    assert "severity" in str(refused.value)
    assert "'debug', 'info', 'warning', 'error' or 'critical'" in str(refused.value)
    assert await redis.xlen(Keys(prefix).events) == 3


async def test_transient_never_touches_the_stream_but_arrives_live(
    publisher: Publisher, redis: aioredis.Redis, prefix: str, subscribe: Callable[..., Any]
) -> None:
    team = await subscribe("team-1")
    ev = make_event("capsule.state.changed", outcome=None)
    receivers = await publisher.publish_transient(ev)
    assert receivers == 1
    message = await team.next()
    assert message == {"event": json.loads(encode(ev))}
    assert "stream_id" not in message
    assert await redis.exists(Keys(prefix).events) == 0
    # a durable type may be mirrored live only, too: still no stream
    await publisher.publish_transient(make_event("capsule.create"))
    assert (await team.next())["event"]["event"] == "capsule.create"
    assert await redis.exists(Keys(prefix).events) == 0


async def test_publish_many_returns_ids_in_order(
    publisher: Publisher, redis: aioredis.Redis, prefix: str, subscribe: Callable[..., Any]
) -> None:
    team = await subscribe("team-b")
    events = [
        make_event(resource_id=f"c{i}", team="team-a" if i % 2 else "team-b") for i in range(7)
    ]
    ids = await publisher.publish_many(events)
    assert len(ids) == 7
    entries = await redis.xrange(Keys(prefix).events)
    assert [e[0].decode() for e in entries] == ids
    assert [decode(e[1][b"payload"]) for e in entries] == events
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    # the live mirror of the batch: team-b's events, in order, with their ids
    for index in (0, 2, 4, 6):
        message = await team.next()
        assert message["stream_id"] == ids[index]
        assert message["event"]["resource"]["id"] == f"c{index}"
    assert await publisher.publish_many([]) == []


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        pytest.param({"event": "capsule.create", "team_id": "t"}, EnvelopeError, id="invalid"),
        pytest.param(
            make_event("capsule.state.changed", outcome=None), CatalogError, id="transient"
        ),
        pytest.param(
            make_event(metadata={f"k{i}": "x" * 1024 for i in range(64)}),
            EnvelopeError,
            id="too-large",
        ),
    ],
)
async def test_publish_many_rejects_the_whole_batch_on_one_bad_event(
    publisher: Publisher, redis: aioredis.Redis, prefix: str, bad: Any, error: type[Exception]
) -> None:
    batch = [make_event(), make_event(), bad, make_event()]
    with pytest.raises(error):
        await publisher.publish_many(batch)
    assert await redis.exists(Keys(prefix).events) == 0


async def test_catalog_violations_raise_before_anything_is_sent(prefix: str) -> None:
    # Pointed at a closed port: reaching the broker would raise BrokerUnavailable.
    settings = Settings(
        broker={"redis_url": CLOSED, "prefix": prefix},
        catalog={"strict": True, "types": {"audit.login": "durable_only"}},
    )
    async with Publisher(settings) as bus:
        with pytest.raises(CatalogError, match="transient event type"):
            await bus.publish(make_event("capsule.state.changed", outcome=None))
        with pytest.raises(CatalogError, match="durable_only"):
            await bus.publish_transient(make_event("audit.login"))
        with pytest.raises(CatalogError, match="not in the catalog"):
            await bus.publish(make_event("billing.invoice.paid"))
        with pytest.raises(CatalogError, match="not in the catalog"):
            await bus.publish_many([make_event(), make_event("billing.invoice.paid")])


async def test_catalog_violation_leaves_the_stream_alone(
    make_settings: Callable[..., Settings], redis: aioredis.Redis, prefix: str
) -> None:
    async with Publisher(make_settings(catalog={"strict": True})) as bus:
        with pytest.raises(CatalogError):
            await bus.publish(make_event("billing.invoice.paid"))
        await bus.publish(make_event("capsule.create"))
    assert await redis.xlen(Keys(prefix).events) == 1


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda bus: bus.publish(make_event()), id="publish"),
        pytest.param(lambda bus: bus.publish_many([make_event()]), id="publish_many"),
        pytest.param(
            lambda bus: bus.publish_transient(make_event("capsule.state.changed", outcome=None)),
            id="publish_transient",
        ),
    ],
)
async def test_unreachable_broker_raises_broker_unavailable(prefix: str, call: Any) -> None:
    settings = Settings(broker={"redis_url": CLOSED, "prefix": prefix, "publish_retries": 1})
    async with Publisher(settings) as bus:
        with pytest.raises(BrokerUnavailable) as info:
            await call(bus)
    assert "unreachable" in str(info.value)
    assert "hunter2pw" not in str(info.value)
    assert isinstance(info.value, EventBusError)


async def test_a_dropped_connection_is_retried(
    publisher: Publisher, redis: aioredis.Redis, prefix: str
) -> None:
    await publisher.publish(make_event())
    client_id = await publisher._redis.client_id()  # type: ignore[union-attr]
    assert await redis.client_kill_filter(_id=client_id) == 1
    await publisher.publish(make_event())
    assert await redis.xlen(Keys(prefix).events) == 2


async def test_closed_publisher_refuses_to_publish(make_settings: Callable[..., Settings]) -> None:
    bus = Publisher(make_settings())
    async with bus:
        await bus.publish(make_event())
    with pytest.raises(EventBusError, match="closed"):
        await bus.publish(make_event())


async def test_injected_client_is_not_closed(
    make_settings: Callable[..., Settings], redis: aioredis.Redis, prefix: str
) -> None:
    async with Publisher(make_settings(), redis=redis) as bus:
        await bus.publish(make_event())
    assert await redis.xlen(Keys(prefix).events) == 1  # still usable


async def test_repr_never_shows_the_password(prefix: str) -> None:
    bus = Publisher.from_url(CLOSED, prefix=prefix)
    assert "hunter2pw" not in repr(bus)
    assert "127.0.0.1:1" in repr(bus)
    assert prefix in repr(bus)
    sync = SyncPublisher.from_url(CLOSED, prefix=prefix)
    assert "hunter2pw" not in repr(sync)
    await bus.aclose()
    sync.close()


async def test_stream_maxlen_caps_the_stream_approximately(
    make_settings: Callable[..., Settings], redis: aioredis.Redis, prefix: str
) -> None:
    async with Publisher(make_settings(broker={"stream_maxlen": 1000})) as bus:
        for _ in range(6):
            await bus.publish_many([make_event() for _ in range(500)])
        await bus.publish(make_event())
    length = await redis.xlen(Keys(prefix).events)
    assert 1000 <= length < 1500, length


async def test_no_cap_by_default(publisher: Publisher, redis: aioredis.Redis, prefix: str) -> None:
    for _ in range(3):
        await publisher.publish_many([make_event() for _ in range(500)])
    assert await redis.xlen(Keys(prefix).events) == 1500


def test_sync_publisher_from_plain_code(redis_url: str, prefix: str) -> None:
    client = sync_redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(f"{prefix}:live:team-1")
        assert pubsub.get_message(timeout=5) is not None  # subscribed
        settings = Settings(broker={"redis_url": redis_url, "prefix": prefix})
        with SyncPublisher(settings) as bus:
            ev = make_event()
            stream_id = bus.publish(ev)
            ids = bus.publish_many([make_event(), make_event()])
            assert bus.publish_transient(make_event("capsule.state.changed", outcome=None)) == 1
            with pytest.raises(CatalogError):
                bus.publish(make_event("capsule.state.changed", outcome=None))
        entries = client.xrange(Keys(prefix).events)
        assert [e[0].decode() for e in entries] == [stream_id, *ids]
        assert entries[0][1] == {b"payload": encode(ev)}
        messages = []
        while len(messages) < 4:
            msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            assert msg is not None, messages
            messages.append(json.loads(msg["data"]))
        assert [m.get("stream_id") for m in messages] == [stream_id, *ids, None]
    finally:
        pubsub.close()
        keys = [*client.scan_iter(match=f"{prefix}*"), *client.scan_iter(match=f"{{{prefix}}}*")]
        if keys:
            client.delete(*keys)
        client.close()


def test_sync_publisher_raises_broker_unavailable(prefix: str) -> None:
    settings = Settings(broker={"redis_url": CLOSED, "prefix": prefix, "publish_retries": 0})
    with SyncPublisher(settings) as bus, pytest.raises(BrokerUnavailable):
        bus.publish(make_event())


async def test_embedded_broker_accepts_a_publish(prefix: str) -> None:
    with EmbeddedRedis(port=0) as server:
        assert server.port != 0
        async with Publisher.from_url(server.url, prefix=prefix) as bus:
            ev = make_event()
            stream_id = await bus.publish(ev)
            [second] = await bus.publish_many([make_event()])
        client = aioredis.Redis.from_url(server.url)
        try:
            entries = await client.xrange(Keys(prefix).events)
        finally:
            await client.aclose()
    assert [e[0].decode() for e in entries] == [stream_id, second]
    assert entries[0][1] == {b"payload": encode(ev)}


def test_sync_publisher_refuses_use_after_close(redis_url: str, prefix: str) -> None:
    from eventbus.errors import EventBusError

    bus = SyncPublisher.from_url(redis_url, prefix=prefix)
    bus.close()
    with pytest.raises(EventBusError, match="closed"):
        bus.publish_transient(
            {"event": "capsule.state.changed", "team_id": "t", "resource": {"id": "c", "type": "x"}}
        )
