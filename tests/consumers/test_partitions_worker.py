"""The worker over broker.partitions: 3 on one Redis node (the cluster case is
tests/consumers/test_cluster_partitions.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.channels.base import OutcomeClass, SendResult
from consumers.store.records import DeliveryStatus, delivery_id
from consumers.worker import Worker
from eventbus.brokers.partitions import PartitionCountError
from eventbus.envelope import Event
from eventbus.keys import Keys, partition_of, split_entry
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import FakeChannel, channel_spec, event, subscription

pytestmark = pytest.mark.integration

PARTS = 3
# Teams covering every partition: one per partition, then a few more.
TEAMS = [f"team-{number}" for number in range(12)]


class Clock:
    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def team_in(part: int) -> str:
    return next(team for team in TEAMS if partition_of(team, PARTS) == part)


@pytest.fixture
async def setup(
    redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[dict[str, Any]]:
    clock = Clock()
    assert {partition_of(team, PARTS) for team in TEAMS} == set(range(PARTS))

    def settings(**kw: Any) -> Settings:
        kw.setdefault("channels", [channel_spec("fake")])
        kw.setdefault("subscriptions", [subscription()])
        consumer = {"name": "w1", "retry_jitter": 0, **kw.pop("consumer", {})}
        broker = {"partitions": PARTS, **kw.pop("broker", {})}
        return make_settings(consumer=consumer, broker=broker, **kw)

    def worker(s: Settings, channels: dict[str, Any], name: str = "w1") -> Worker:
        s = s.model_copy(update={"consumer": s.consumer.model_copy(update={"name": name})})
        return Worker(s, redis=redis, channels=channels, clock=clock)

    async def publish(s: Settings, *events: Event) -> list[str]:
        async with Publisher(s, redis=redis) as bus:
            return await bus.publish_many(list(events))

    yield {"settings": settings, "worker": worker, "publish": publish, "clock": clock}


async def pending(redis: aioredis.Redis, s: Settings, part: int) -> int:
    keys = Keys(s.broker.prefix).partition(part)
    return int((await redis.xpending(keys.events, s.consumer.group))["pending"])


async def test_every_partition_is_read_delivered_once_and_acked_on_its_stream(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"]()
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    events = [event(team_id=team, resource={"type": "capsule", "id": team}) for team in TEAMS]
    ids = await setup["publish"](s, *events)
    assert {split_entry(stream_id)[1] for stream_id in ids} == set(range(PARTS))

    assert await w.drain() == len(TEAMS)

    assert sorted(m.delivery_id for m in fake.sent) == sorted(
        delivery_id(ev.id, "all", "fake") for ev in events
    )
    keys = Keys(s.broker.prefix)
    for ev in events:
        part = partition_of(ev.team_id, PARTS)
        did = delivery_id(ev.id, "all", "fake")
        assert await redis.exists(keys.partition(part).delivery(did)) == 1, "in its own slot"
        record = await w.store.get(did)
        assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert [await pending(redis, s, part) for part in range(PARTS)] == [0] * PARTS
    found = await w.store.query(limit=100)
    assert len(found) == len(TEAMS), "queries merge every partition"


async def test_a_retry_lives_and_is_claimed_in_its_partition(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](consumer={"retry_schedule": ["5s"]})
    failing = SendResult(OutcomeClass.RETRYABLE, status=500, error="HTTP 500")
    fake = FakeChannel("fake", failing)
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    ev = event(team_id=team_in(2))
    await setup["publish"](s, ev)
    await w.drain()
    keys = Keys(s.broker.prefix)
    did = delivery_id(ev.id, "all", "fake")
    assert await redis.zscore(keys.partition(2).retries, did) is not None
    assert await redis.zcard(keys.retries) == 0
    setup["clock"].now += 6
    assert await w.drain() == 1
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert await redis.zcard(keys.partition(2).retries) == 0, "the retry's commit went there"


async def test_a_dead_consumers_entries_are_reclaimed_from_every_partition(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](consumer={"claim_idle": 0})
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake}, name="rescuer")
    await w.start()
    events = [event(team_id=team_in(part)) for part in range(PARTS)]
    await setup["publish"](s, *events)
    keys = Keys(s.broker.prefix)
    for part in range(PARTS):  # a consumer that read them and died
        await redis.xreadgroup(s.consumer.group, "dead", {keys.partition(part).events: ">"})
    assert [await pending(redis, s, part) for part in range(PARTS)] == [1] * PARTS

    assert await w.reclaim_once() == PARTS
    await w.pipeline.idle()
    assert len(fake.sent) == PARTS
    assert [await pending(redis, s, part) for part in range(PARTS)] == [0] * PARTS


async def test_garbage_in_a_partition_becomes_its_dead_letter(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"]()
    w = setup["worker"](s, {"fake": FakeChannel("fake")})
    await w.start()
    keys = Keys(s.broker.prefix).partition(1)
    raw_id = (await redis.xadd(keys.events, {"payload": b"not json"})).decode()
    await w.drain()
    dead = await redis.xrange(keys.dlq)
    assert len(dead) == 1 and dead[0][1][b"dlq_reason"] == b"invalid_envelope"
    assert dead[0][1][b"dlq_original_id"].decode() == f"{raw_id}@1"
    assert await pending(redis, s, 1) == 0
    assert await redis.xlen(Keys(s.broker.prefix).dlq) == 0


async def test_gone_from_another_partition_disables_the_channel_globally(
    setup: dict[str, Any],
) -> None:
    s = setup["settings"]()
    gone = SendResult(OutcomeClass.PERMANENT, status=410, error="HTTP 410", disable_channel=True)
    fake = FakeChannel("fake", gone)
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    await setup["publish"](s, event(team_id=team_in(2)))
    await w.drain()
    states = await w.store.channel_states()
    assert states["fake"].disabled
    later = event(team_id=team_in(1))
    await setup["publish"](s, later)
    await w.drain()
    record = await w.store.get(delivery_id(later.id, "all", "fake"))
    assert record is not None and record.status is DeliveryStatus.SKIPPED


async def test_a_global_subscription_groups_per_partition(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    grouping = subscription(group_by=["event"], group_wait="10s", group_interval="1h")
    s = setup["settings"](subscriptions=[grouping])
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    await setup["publish"](s, *(event(team_id=team_in(part)) for part in (0, 1, 1, 2)))
    await w.drain()
    assert fake.sent == []
    setup["clock"].now += 11
    await w.drain()
    # one digest per partition holding events: three, with distinct ids
    assert len(fake.sent) == 3
    assert len({m.delivery_id for m in fake.sent}) == 3
    keys = Keys(s.broker.prefix)
    assert [await redis.zcard(keys.partition(part).groups) for part in range(PARTS)] == [0] * 3


async def test_a_worker_with_another_count_refuses_to_start_while_events_wait(
    setup: dict[str, Any],
) -> None:
    s = setup["settings"]()
    w = setup["worker"](s, {"fake": FakeChannel("fake")})
    await w.start()
    await setup["publish"](s, *(event(team_id=team) for team in TEAMS))
    fewer = setup["settings"](broker={"partitions": 2})
    with pytest.raises(PartitionCountError, match=r"broker\.partitions is 2"):
        await setup["worker"](fewer, {"fake": FakeChannel("fake")}, name="w2").start()
    await w.drain()
    await setup["worker"](fewer, {"fake": FakeChannel("fake")}, name="w2").start()


async def test_the_read_loop_screens_a_repeated_event_in_its_partition(
    setup: dict[str, Any],
) -> None:
    # run(): each partition's reader screens in its own partition only (SCREEN_PARTITION)
    s = setup["settings"](consumer={"block": 0.1})
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    runner = asyncio.create_task(w.run())
    try:
        team = team_in(2)
        first = event(team_id=team)
        await setup["publish"](s, first)
        await fake.wait_for(1)
        later = event(team_id=team, resource={"type": "capsule", "id": "later"})
        await setup["publish"](s, first, later)  # the same event again, then another
        await fake.wait_for(2)
    finally:
        w.stop()
        await asyncio.wait_for(runner, 10)
    did = delivery_id(first.id, "all", "fake")
    assert [m.delivery_id for m in fake.sent] == [did, delivery_id(later.id, "all", "fake")]
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.DELIVERED


async def test_a_failing_partition_reader_restarts_the_read_loop(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventbus.errors import BrokerUnavailable

    s = setup["settings"](consumer={"block": 0.1})
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    reader = w.readers[1]
    real_read = reader.read
    failures = [BrokerUnavailable("read: Redis is unreachable (test)")] * 2

    async def flaky_read(*args: Any, **kwargs: Any) -> Any:
        if failures and not kwargs.get("pending"):
            raise failures.pop()
        return await real_read(*args, **kwargs)

    monkeypatch.setattr(reader, "read", flaky_read)
    runner = asyncio.create_task(w.run())
    try:
        await setup["publish"](s, *(event(team_id=team_in(part)) for part in range(PARTS)))
        await fake.wait_for(PARTS, timeout=20)
    finally:
        w.stop()
        await asyncio.wait_for(runner, 10)
    assert failures == [], "the loop was restarted after each failure"
    assert w.health.ready_reason is None
