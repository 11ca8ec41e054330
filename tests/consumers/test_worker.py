"""The worker against the real Redis: records, acks, retries, dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.channels.base import OutcomeClass, SendResult
from consumers.store import Settlement
from consumers.store.commit import Committer
from consumers.store.maintenance import Maintenance
from consumers.store.records import DeliveryStatus, delivery_id
from consumers.store.retries import RetryJob, RetryQueue
from consumers.worker import Worker
from eventbus.envelope import Event
from eventbus.errors import BrokerUnavailable
from eventbus.keys import Keys
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import DELIVERED, FakeChannel, channel_spec, event, subscription

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


WorkerFactory = Callable[..., Worker]


@pytest.fixture
async def setup(
    redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[dict[str, Any]]:
    created: list[Worker] = []
    clock = Clock()

    def settings(**kw: Any) -> Settings:
        kw.setdefault("channels", [channel_spec("fake")])
        kw.setdefault("subscriptions", [subscription()])
        consumer = {"name": "w1", "retry_jitter": 0, **kw.pop("consumer", {})}
        return make_settings(consumer=consumer, **kw)

    def worker(s: Settings, channels: dict[str, Any], name: str = "w1") -> Worker:
        s = s.model_copy(update={"consumer": s.consumer.model_copy(update={"name": name})})
        w = Worker(s, redis=redis, channels=channels, clock=clock)
        created.append(w)
        return w

    async def publish(s: Settings, *events: Any) -> list[str]:
        async with Publisher(s, redis=redis) as bus:
            return await bus.publish_many(list(events))

    yield {"settings": settings, "worker": worker, "publish": publish, "clock": clock}


async def published_and_drained(
    setup: dict[str, Any], s: Settings, fake: FakeChannel
) -> tuple[Worker, Event]:
    """A started worker on ``fake`` that has drained one newly published event."""
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    ev = event()
    await setup["publish"](s, ev)
    await w.drain()
    return w, ev


async def pending(redis: aioredis.Redis, s: Settings) -> int:
    info = await redis.xpending(Keys(s.broker.prefix).events, s.consumer.group)
    return int(info["pending"])


async def test_delivered_recorded_and_acked(setup: dict[str, Any], redis: aioredis.Redis) -> None:
    s = setup["settings"]()
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    ev = event()
    await setup["publish"](s, ev)

    assert await w.drain() == 1

    assert len(fake.sent) == 1
    did = delivery_id(ev.id, "all", "fake")
    assert fake.sent[0].delivery_id == did
    record = await w.store.get(did)
    assert record is not None
    assert record.status is DeliveryStatus.DELIVERED
    assert record.attempts == 1
    assert [a.outcome for a in record.history] == ["delivered"]
    assert await pending(redis, s) == 0
    ttl = await redis.ttl(Keys(s.broker.prefix).delivery(did))
    assert 0 < ttl <= s.consumer.record_ttl, "records expire after consumer.record_ttl"


async def test_retry_then_delivered_keeps_delivery_id(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](consumer={"retry_schedule": ["5s", "1m"]})
    fake = FakeChannel("fake", SendResult(OutcomeClass.RETRYABLE, status=500, error="HTTP 500"))
    w, ev = await published_and_drained(setup, s, fake)

    did = delivery_id(ev.id, "all", "fake")
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.RETRYING
    assert record.next_attempt_at == pytest.approx(setup["clock"].now + 5, abs=0.01)
    assert await pending(redis, s) == 0, "acked once the retry was scheduled"
    assert await w.drain() == 0, "not due yet"

    setup["clock"].now += 6
    assert await w.drain() == 1
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert [(a.number, a.outcome, a.status) for a in record.history] == [
        (1, "retryable", 500),
        (2, "delivered", 200),
    ]
    assert [m.delivery_id for m in fake.sent] == [did, did]
    assert await redis.zcard(Keys(s.broker.prefix).retries) == 0


async def test_record_is_one_key_with_every_attempt(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](consumer={"retry_schedule": ["1s", "1s"]})
    fake = FakeChannel(
        "fake",
        SendResult(OutcomeClass.RETRYABLE, status=502, error="HTTP 502"),
        SendResult(OutcomeClass.RETRYABLE, status=503, error="HTTP 503"),
    )
    w, ev = await published_and_drained(setup, s, fake)
    for _ in range(2):
        setup["clock"].now += 2
        await w.drain()
    did = delivery_id(ev.id, "all", "fake")
    keys = Keys(s.broker.prefix)
    stored = json.loads(await redis.get(keys.delivery(did)))
    assert [a["status"] for a in stored["history"]] == [502, 503, 200]
    assert stored["status"] == "delivered" and stored["attempts"] == 3
    assert [k async for k in redis.scan_iter(match=f"{keys.tag}:attempts:*")] == []
    assert (await w.store.query(event_id=ev.id))[0].id == did


async def test_large_commit_is_chunked(redis: aioredis.Redis, prefix: str) -> None:
    """More members than Lua's unpack() takes at once: still one atomic commit."""
    keys = Keys(prefix)
    await redis.xgroup_create(keys.events, "g", id="0", mkstream=True)
    pipe = redis.pipeline(transaction=False)
    for i in range(4500):
        pipe.xadd(keys.events, {"payload": str(i)})
    await pipe.execute()
    await redis.xreadgroup("g", "c", {keys.events: ">"}, count=5000)
    entries = await redis.xrange(keys.events)
    plans = [Settlement(ack=entry_id.decode()) for entry_id, _ in entries]
    jobs = [(RetryJob(f"d{i}", b"{}", "s", "c", 1, 0.0), 100.0 + i) for i in range(4500)]
    plans[0].retries = jobs
    await Committer(redis, keys, "g", 60).commit(plans, now=0)
    assert (await redis.xpending(keys.events, "g"))["pending"] == 0
    assert await redis.zcard(keys.retries) == 4500


async def test_retries_exhausted_fail(setup: dict[str, Any]) -> None:
    s = setup["settings"](subscriptions=[subscription(retry=["1s"])])
    fake = FakeChannel("fake")
    fake.default = SendResult(OutcomeClass.RETRYABLE, status=503)
    w, ev = await published_and_drained(setup, s, fake)
    setup["clock"].now += 2
    await w.drain()
    record = await w.store.get(delivery_id(ev.id, "all", "fake"))
    assert record is not None
    assert record.status is DeliveryStatus.FAILED
    assert record.attempts == 2
    assert "gave up" in (record.reason or "")


async def test_permanent_failure_not_retried(setup: dict[str, Any], redis: aioredis.Redis) -> None:
    s = setup["settings"]()
    fake = FakeChannel("fake", SendResult(OutcomeClass.PERMANENT, status=400, error="HTTP 400"))
    w, ev = await published_and_drained(setup, s, fake)
    record = await w.store.get(delivery_id(ev.id, "all", "fake"))
    assert record is not None and record.status is DeliveryStatus.FAILED
    assert record.last_status == 400
    assert await redis.zcard(Keys(s.broker.prefix).retries) == 0


async def test_gone_disables_channel_and_later_events_skip(setup: dict[str, Any]) -> None:
    s = setup["settings"]()
    gone = SendResult(OutcomeClass.PERMANENT, status=410, error="HTTP 410", disable_channel=True)
    fake = FakeChannel("fake", gone)
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    first, second = event(), event()
    await setup["publish"](s, first)
    await w.drain()
    states = await w.store.channel_states()
    assert states["fake"].disabled

    # A fresh worker (another process) learns the state from Redis.
    w2 = setup["worker"](s, {"fake": fake}, name="w2")
    await w2.start()
    await setup["publish"](s, second)
    await w2.drain()
    assert len(fake.sent) == 1
    record = await w2.store.get(delivery_id(second.id, "all", "fake"))
    assert record is not None and record.status is DeliveryStatus.SKIPPED
    assert "disabled" in (record.reason or "")
    # Operators hear about it: an eventbus.channel.disabled event on the stream.
    entries = await w.redis.xrange(Keys(s.broker.prefix).events)
    operator = [
        json.loads(f[b"payload"])
        for _, f in entries
        if b"eventbus.channel.disabled" in f[b"payload"]
    ]
    assert [(o["team_id"], o["resource"]["id"]) for o in operator] == [("eventbus", "fake")]


async def test_garbage_entries_dead_lettered_good_ones_delivered(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"]()
    keys = Keys(s.broker.prefix)
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    await redis.xadd(keys.events, {"payload": b"\xff\xfe not json"})
    await redis.xadd(keys.events, {"other": "field"})
    await redis.xadd(keys.events, {"payload": json.dumps({"event": "BAD TYPE"})})
    good = event()
    await setup["publish"](s, good)

    assert await w.drain() == 4

    assert [m.event.id for m in fake.sent] == [good.id]
    letters = await w.dead_letters.entries()
    assert sorted(d.reason for d in letters) == [
        "invalid_envelope",
        "invalid_envelope",
        "no_payload",
    ]
    assert all(d.original_id for d in letters)
    assert await pending(redis, s) == 0


async def test_max_receives_goes_to_dead_letters(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](consumer={"claim_idle": 0, "max_receives": 3})
    keys = Keys(s.broker.prefix)
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    (stream_id,) = await setup["publish"](s, event())
    # A consumer that received it and died, many times over.
    await redis.xreadgroup(s.consumer.group, "dead", {keys.events: ">"})
    await redis.xclaim(keys.events, s.consumer.group, "dead", 0, [stream_id], retrycount=5)

    assert await w.reclaim_once() == 1
    await w.drain(include_pending=False)

    assert fake.sent == []
    (letter,) = await w.dead_letters.entries()
    assert letter.reason == "max_receives"
    assert letter.original_id == stream_id
    assert await pending(redis, s) == 0


async def test_crash_before_commit_leaves_entry_pending_for_reclaim(
    setup: dict[str, Any], redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = setup["settings"](consumer={"claim_idle": 0})
    fake = FakeChannel("fake")
    w1 = setup["worker"](s, {"fake": fake}, name="doomed")
    await w1.start()
    ev = event()
    await setup["publish"](s, ev)

    async def broken_commit(plans: Any) -> None:
        raise BrokerUnavailable("connection lost before EXEC")

    monkeypatch.setattr(w1.pipeline, "commit", broken_commit)
    await w1.drain()
    assert len(fake.sent) == 1
    assert await pending(redis, s) == 1, "not acked without a recorded outcome"
    assert await w1.store.get(delivery_id(ev.id, "all", "fake")) is None

    w2 = setup["worker"](s, {"fake": fake}, name="rescuer")
    await w2.start()
    assert await w2.reclaim_once() == 1
    await w2.drain(include_pending=False)
    assert len(fake.sent) == 2
    assert fake.sent[0].delivery_id == fake.sent[1].delivery_id
    record = await w2.store.get(delivery_id(ev.id, "all", "fake"))
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert await pending(redis, s) == 0


async def test_restart_drains_own_pending_first(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"]()
    keys = Keys(s.broker.prefix)
    fake = FakeChannel("fake")
    await setup["publish"](s, event(), event())
    w = setup["worker"](s, {"fake": fake}, name="same")
    await w.start()
    # Received before a "crash", never acked.
    await redis.xreadgroup(s.consumer.group, "same", {keys.events: ">"}, count=1)
    assert await pending(redis, s) == 1
    assert await w.drain() == 2
    assert len(fake.sent) == 2
    assert await pending(redis, s) == 0


async def test_team_and_outcome_matching(setup: dict[str, Any]) -> None:
    subs = [
        subscription("team1-errors", team="team-1", outcomes=["error"]),
        subscription("everyone", channels=("other",)),
    ]
    s = setup["settings"](
        channels=[channel_spec("fake"), channel_spec("other")], subscriptions=subs
    )
    fake, other = FakeChannel("fake"), FakeChannel("other")
    w = setup["worker"](s, {"fake": fake, "other": other})
    await w.start()
    await setup["publish"](
        s,
        event(team_id="team-1", outcome="error", error="x"),
        event(team_id="team-2", outcome="error", error="x"),
        event(team_id="team-1", outcome="success"),
    )
    await w.drain()
    assert [(m.event.team_id, m.event.outcome_name) for m in fake.sent] == [("team-1", "error")]
    assert len(other.sent) == 3


async def test_channel_exception_and_timeout_are_retryable(setup: dict[str, Any]) -> None:
    s = setup["settings"](
        channels=[channel_spec("boom"), channel_spec("slow", timeout=0.05)],
        subscriptions=[subscription(channels=("boom", "slow"))],
    )
    boom = FakeChannel("boom", RuntimeError("secret-token-in-message"))
    slow = FakeChannel("slow")
    slow.gate = asyncio.Event()  # never opens: the send hangs
    w = setup["worker"](s, {"boom": boom, "slow": slow})
    await w.start()
    ev = event()
    await setup["publish"](s, ev)
    await w.drain()
    rb = await w.store.get(delivery_id(ev.id, "all", "boom"))
    rs = await w.store.get(delivery_id(ev.id, "all", "slow"))
    assert rb is not None and rb.status is DeliveryStatus.RETRYING
    assert rb.last_error == "channel raised RuntimeError"
    assert "secret" not in json.dumps(rb.to_dict())
    assert rs is not None and rs.status is DeliveryStatus.RETRYING
    assert "timed out" in (rs.last_error or "")


async def test_rate_limited_is_not_a_failed_attempt(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"]()
    fake = FakeChannel("fake", SendResult(OutcomeClass.RATE_LIMITED, retry_after=30))
    w, ev = await published_and_drained(setup, s, fake)
    did = delivery_id(ev.id, "all", "fake")
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.RETRYING
    assert record.attempts == 0 and record.history == []
    setup["clock"].now += 31
    await w.drain()
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert record.attempts == 1
    keys = Keys(s.broker.prefix)
    assert await redis.zcard(keys.retries) == 0, "a settled retry leaves the schedule"
    assert not await redis.exists(keys.retry_job(did))
    setup["clock"].now += 3600
    assert await w.drain() == 0, "and is never attempted again"
    assert len(fake.sent) == 2


async def test_rate_limited_for_too_long_fails(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](
        subscriptions=[subscription(retry=["1s"])], consumer={"retry_after_max": "10s"}
    )
    fake = FakeChannel("fake")
    fake.default = SendResult(OutcomeClass.RATE_LIMITED, status=429, retry_after=5)
    w, ev = await published_and_drained(setup, s, fake)
    did = delivery_id(ev.id, "all", "fake")
    setup["clock"].now += 6
    await w.drain()
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.FAILED
    assert record.reason is not None and record.reason.startswith(
        "still rate limited 6s after the first try; gave up (a delivery waits at most 10s"
    )
    assert await redis.zcard(Keys(s.broker.prefix).retries) == 0
    setup["clock"].now += 3600
    assert await w.drain() == 0 and len(fake.sent) == 2, "never tried again"


async def test_unknown_channel_after_reload_is_a_failed_record(setup: dict[str, Any]) -> None:
    s = setup["settings"]()
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    w.reconfigure(s, {})  # the channel vanished from the running set
    ev = event()
    await setup["publish"](s, ev)
    await w.drain()
    record = await w.store.get(delivery_id(ev.id, "all", "fake"))
    assert record is not None and record.status is DeliveryStatus.FAILED
    assert "not configured" in (record.reason or "")


async def test_two_workers_share_the_work_without_double_attempts(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](consumer={"batch_size": 7})
    fake = FakeChannel("fake")
    events = [event(resource={"type": "capsule", "id": f"c{i}"}) for i in range(60)]
    await setup["publish"](s, *events)
    w1 = setup["worker"](s, {"fake": fake}, name="a")
    w2 = setup["worker"](s, {"fake": fake}, name="b")
    await w1.start()
    await w2.start()
    done = await asyncio.gather(w1.drain(), w2.drain())
    assert sum(done) == 60
    assert sorted(m.event.id for m in fake.sent) == sorted(e.id for e in events)
    assert await pending(redis, s) == 0


async def test_retry_claim_is_exclusive(redis: aioredis.Redis, prefix: str) -> None:
    queue = RetryQueue(redis, Keys(prefix), ttl=60)
    jobs = [(RetryJob(f"d{i}", b"{}", "s", "c", 1, 0.0), 100.0) for i in range(50)]
    await Committer(redis, Keys(prefix), "g", 60).commit([Settlement(retries=jobs)], now=0)
    claims = await asyncio.gather(*(queue.claim(now=200.0, lease=60, count=10) for _ in range(8)))
    ids = [job.delivery_id for claim in claims for job in claim]
    assert len(ids) == len(set(ids)) == 50
    assert await queue.claim(now=200.0, lease=60, count=100) == [], "leased"
    assert len(await queue.claim(now=261.0, lease=60, count=100)) == 50, "lease ran out"


async def test_safe_trim_keeps_unacked_entries(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"]()
    keys = Keys(s.broker.prefix)
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    ids = await setup["publish"](s, *[event() for _ in range(5)])
    # A second group that has read only two entries and acked one.
    await redis.xgroup_create(keys.events, "laggard", id="0")
    got = await redis.xreadgroup("laggard", "x", {keys.events: ">"}, count=2)
    await redis.xack(keys.events, "laggard", got[0][1][0][0])
    await w.drain()

    trimmed = await Maintenance(redis, keys).trim(min_age=0)

    assert trimmed == 1
    remaining = [i.decode() for i, _ in await redis.xrange(keys.events)]
    assert remaining == ids[1:], "the laggard's pending entry and unread ones stay"


async def test_dead_consumers_removed_only_without_pending(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"]()
    keys = Keys(s.broker.prefix)
    w = setup["worker"](s, {"fake": FakeChannel("fake")})
    await w.start()
    await setup["publish"](s, event())
    await redis.xreadgroup(s.consumer.group, "holder", {keys.events: ">"})
    await redis.xgroup_createconsumer(keys.events, s.consumer.group, "idle-empty")
    removed = await Maintenance(redis, keys).remove_dead_consumers(s.consumer.group, 0, "w1")
    assert removed == ["idle-empty"]
    names = {c["name"].decode() for c in await redis.xinfo_consumers(keys.events, "delivery")}
    assert "holder" in names


async def test_graceful_stop_finishes_in_flight(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](consumer={"block": 0.1, "drain_timeout": 10})
    fake = FakeChannel("fake")
    fake.gate = asyncio.Event()
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    runner = asyncio.create_task(w.run())
    await setup["publish"](s, event())
    await asyncio.wait_for(fake.started.wait(), 10)
    w.stop()
    fake.gate.set()
    await asyncio.wait_for(runner, 15)
    assert await pending(redis, s) == 0


async def test_stop_past_drain_timeout_leaves_entry_pending(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](consumer={"block": 0.1, "drain_timeout": 0.2})
    fake = FakeChannel("fake")
    fake.gate = asyncio.Event()  # never opens
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    runner = asyncio.create_task(w.run())
    await setup["publish"](s, event())
    await asyncio.wait_for(fake.started.wait(), 10)
    w.stop()
    await asyncio.wait_for(runner, 10)
    assert await pending(redis, s) == 1, "left for another worker"


async def test_in_flight_is_bounded(setup: dict[str, Any]) -> None:
    s = setup["settings"](consumer={"block": 0.1, "max_in_flight": 3, "batch_size": 50})
    fake = FakeChannel("fake")
    fake.gate = asyncio.Event()
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    await setup["publish"](s, *[event() for _ in range(20)])
    runner = asyncio.create_task(w.run())
    await fake.wait_for(3)
    # Give the reader every chance to overrun the bound before checking it.
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(fake.sent) == 3
    fake.gate.set()
    await fake.wait_for(20)
    w.stop()
    await asyncio.wait_for(runner, 10)


async def test_read_loop_survives_broker_errors(
    setup: dict[str, Any], redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = setup["settings"](consumer={"block": 0.1})
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    real_read = w.streams.read
    failures = [BrokerUnavailable("read: Redis is unreachable (test)")] * 2

    async def flaky_read(*args: Any, **kwargs: Any) -> Any:
        if failures and not kwargs.get("pending") and args[4:5] != (True,):
            raise failures.pop()
        return await real_read(*args, **kwargs)

    monkeypatch.setattr(w.streams, "read", flaky_read)
    runner = asyncio.create_task(w.run())
    await setup["publish"](s, event())
    await fake.wait_for(1, timeout=20)
    assert failures == [], "the loop was restarted after each failure"
    assert w.health.ready_reason is None, "ready again once reading works"
    w.stop()
    await asyncio.wait_for(runner, 10)


# -- pinned by faults that got through before (issue 12, items 9, 21 and 22) -----------


async def test_envelope_without_id_keeps_one_delivery_id_across_receives_and_retries(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    from eventbus.envelope import entry_ids

    s = setup["settings"](consumer={"retry_schedule": ["5s"]})
    fake = FakeChannel("fake", SendResult(OutcomeClass.RETRYABLE, status=500, error="HTTP 500"))
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    # What a producer in another language writes: no id, no timestamp.
    payload = b'{"event":"host.down","team_id":"team-1","resource":{"id":"h1","type":"host"}}'
    stream_id = (await redis.xadd(Keys(s.broker.prefix).events, {"payload": payload})).decode()
    event_id, _ = entry_ids(stream_id, payload)
    did = delivery_id(event_id, "all", "fake")
    entries = await redis.xrange(Keys(s.broker.prefix).events)
    from eventbus.brokers.redis_streams import StreamEntry

    again = [w.dispatcher.entry_work(StreamEntry(stream_id, entries[0][1])) for _ in range(2)]
    assert {work.event.id for work in again if work.event} == {event_id}, "every receive alike"

    await w.drain()
    setup["clock"].now += 6
    assert await w.drain() == 1  # the retry, decoded from the stored payload
    assert [m.delivery_id for m in fake.sent] == [did, did]
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.DELIVERED


async def test_retry_after_from_the_channel_sets_the_next_attempt(
    setup: dict[str, Any],
) -> None:
    # With None handed to the policy instead, the 5 s schedule would apply.
    s = setup["settings"](consumer={"retry_schedule": ["5s"], "retry_after_max": "10m"})
    asked = SendResult(OutcomeClass.RETRYABLE, status=503, error="HTTP 503", retry_after=120)
    w, ev = await published_and_drained(setup, s, FakeChannel("fake", asked))
    record = await w.store.get(delivery_id(ev.id, "all", "fake"))
    assert record is not None and record.status is DeliveryStatus.RETRYING
    assert record.next_attempt_at == pytest.approx(setup["clock"].now + 120, abs=0.01)


async def test_retry_after_is_clamped_to_retry_after_max(setup: dict[str, Any]) -> None:
    s = setup["settings"](consumer={"retry_schedule": ["5s"], "retry_after_max": "60s"})
    asked = SendResult(OutcomeClass.RETRYABLE, status=503, error="HTTP 503", retry_after=120)
    w, ev = await published_and_drained(setup, s, FakeChannel("fake", asked))
    record = await w.store.get(delivery_id(ev.id, "all", "fake"))
    assert record is not None
    assert record.next_attempt_at == pytest.approx(setup["clock"].now + 60, abs=0.01)


@pytest.mark.parametrize(
    ("received", "dead"),
    [pytest.param(3, False, id="exactly-max_receives"), pytest.param(4, True, id="one-more")],
)
async def test_max_receives_boundary(
    setup: dict[str, Any], redis: aioredis.Redis, received: int, dead: bool
) -> None:
    s = setup["settings"](consumer={"claim_idle": 0, "max_receives": 3})
    keys = Keys(s.broker.prefix)
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    (stream_id,) = await setup["publish"](s, event())
    await redis.xreadgroup(s.consumer.group, "dead", {keys.events: ">"})
    # received - 1 times so far; the reclaim below is one more receive
    await redis.xclaim(
        keys.events, s.consumer.group, "dead", 0, [stream_id], retrycount=received - 1
    )
    assert await w.reclaim_once() == 1
    await w.drain(include_pending=False)
    letters = await w.dead_letters.entries()
    assert (len(letters) == 1) is dead
    assert (len(fake.sent) == 1) is not dead
    assert await pending(redis, s) == 0


# -- duplicate entries of one event (issue 12, item 10) ---------------------------------


def outcomes(record: Any) -> list[str]:
    return [a.outcome for a in record.history]


@pytest.mark.parametrize(
    ("batch_size", "apart"),
    [
        pytest.param(100, False, id="one-read-batch"),
        pytest.param(1, False, id="two-read-batches"),
        pytest.param(100, True, id="published-again-after-delivery"),
    ],
)
async def test_duplicate_publish_is_sent_once_and_noted(
    setup: dict[str, Any], redis: aioredis.Redis, batch_size: int, apart: bool
) -> None:
    s = setup["settings"](consumer={"batch_size": batch_size})
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    ev = event()
    if apart:
        (first,) = await setup["publish"](s, ev)
        await w.drain()
        (second,) = await setup["publish"](s, ev)
    else:
        first, second = await setup["publish"](s, ev, ev)

    await w.drain()

    assert len(fake.sent) == 1, "one POST for one event id"
    assert await pending(redis, s) == 0, "the duplicate entry is acked too"
    (record,) = await w.store.query(event_id=ev.id, history=True)
    assert record.status is DeliveryStatus.DELIVERED
    assert record.attempts == 1
    assert outcomes(record) == ["delivered", "duplicate"]
    assert second in (record.history[1].response or "")
    assert first not in (record.history[1].response or "")


@pytest.mark.parametrize(
    ("first", "sends", "history"),
    [
        pytest.param(DELIVERED, 1, ["delivered", "duplicate"], id="owner-delivered"),
        pytest.param(
            SendResult(OutcomeClass.RETRYABLE, status=503, error="HTTP 503"),
            2,
            ["retryable", "delivered"],
            id="owner-retrying",
        ),
    ],
)
async def test_entry_waits_for_the_same_delivery_in_flight(
    setup: dict[str, Any],
    redis: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    first: SendResult,
    sends: int,
    history: list[str],
) -> None:
    s = setup["settings"](consumer={"batch_size": 1, "retry_schedule": ["1h"]})
    fake = FakeChannel("fake", first)
    fake.gate = asyncio.Event()
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    waiting = asyncio.Event()
    after_owners = w.pipeline._after_owners

    async def spy(*args: Any) -> Any:
        waiting.set()
        return await after_owners(*args)

    monkeypatch.setattr(w.pipeline, "_after_owners", spy)
    ev = event()
    await setup["publish"](s, ev, ev)
    drained = asyncio.create_task(w.drain())
    await asyncio.wait_for(waiting.wait(), 10)  # the second entry, while the first sends
    assert len(fake.sent) == 1
    fake.gate.set()
    assert await asyncio.wait_for(drained, 10) == 2

    assert len(fake.sent) == sends
    record = await w.store.get(delivery_id(ev.id, "all", "fake"))
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert outcomes(record) == history
    assert await redis.zcard(Keys(s.broker.prefix).retries) == 0
    assert await pending(redis, s) == 0


async def test_delivery_recorded_failed_or_retrying_is_sent_again(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](consumer={"retry_schedule": ["1h"]})
    answers = (
        SendResult(OutcomeClass.RETRYABLE, status=503, error="HTTP 503"),
        SendResult(OutcomeClass.PERMANENT, status=400, error="HTTP 400"),
    )
    fake = FakeChannel("fake", *answers)
    w = setup["worker"](s, {"fake": fake})
    await w.start()
    ev = event()
    did = delivery_id(ev.id, "all", "fake")
    await setup["publish"](s, ev)
    await w.drain()
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.RETRYING
    await setup["publish"](s, ev)
    await w.drain()
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.FAILED
    await setup["publish"](s, ev)
    await w.drain()

    assert len(fake.sent) == 3, "neither retrying nor failed is done"
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert record.attempts == 3, "one record: each entry continued its attempts"
    assert outcomes(record) == ["retryable", "permanent", "delivered"]
    assert await redis.zcard(Keys(s.broker.prefix).retries) == 0, "no retry left behind"
    assert await pending(redis, s) == 0


async def crashed_then_repeated(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch, other: FakeChannel
) -> tuple[Settings, Worker, Event, FakeChannel]:
    """An entry sent to two channels by a worker that died before its commit, then the
    same event in a second entry, processed by another worker: "fake" delivered, "other"
    answered as ``other`` says."""
    s = setup["settings"](
        channels=[channel_spec("fake"), channel_spec("other")],
        subscriptions=[subscription(channels=("fake", "other"))],
        consumer={"claim_idle": 0, "retry_schedule": ["5s"]},
    )
    fake = FakeChannel("fake")
    doomed = setup["worker"](s, {"fake": fake, "other": other}, name="doomed")
    await doomed.start()
    ev = event()
    await setup["publish"](s, ev)

    async def broken_commit(plans: Any) -> None:
        raise BrokerUnavailable("connection lost before EXEC")

    monkeypatch.setattr(doomed.pipeline, "commit", broken_commit)
    await doomed.drain()
    assert (len(fake.sent), len(other.sent)) == (1, 1)

    rescuer = setup["worker"](s, {"fake": fake, "other": other}, name="rescuer")
    await rescuer.start()
    await setup["publish"](s, ev)
    assert await rescuer.drain(include_pending=False) == 1
    assert (len(fake.sent), len(other.sent)) == (2, 2)
    return s, rescuer, ev, fake


async def test_reclaimed_entry_resends_only_what_was_not_recorded_delivered(
    setup: dict[str, Any], redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # delivered for the doomed worker (never recorded), then 502 for the second entry
    other = FakeChannel("other", DELIVERED, SendResult(OutcomeClass.RETRYABLE, error="502"))
    s, rescuer, ev, fake = await crashed_then_repeated(setup, monkeypatch, other)

    assert await rescuer.reclaim_once() == 1
    await rescuer.drain(include_pending=False)

    assert len(fake.sent) == 2, "recorded delivered: not sent again"
    assert len(other.sent) == 3, "recorded retrying: sent again"
    done = await rescuer.store.get(delivery_id(ev.id, "all", "fake"))
    assert done is not None and outcomes(done) == ["delivered", "duplicate"]
    again = await rescuer.store.get(delivery_id(ev.id, "all", "other"))
    assert again is not None and again.status is DeliveryStatus.DELIVERED
    assert outcomes(again) == ["retryable", "delivered"]
    assert await redis.zcard(Keys(s.broker.prefix).retries) == 0
    assert await pending(redis, s) == 0


async def test_reclaimed_entry_is_not_resent_after_a_retry_delivered_it(
    setup: dict[str, Any], redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # delivered for the doomed worker (never recorded), then 502 for the second entry
    other = FakeChannel("other", DELIVERED, SendResult(OutcomeClass.RETRYABLE, error="502"))
    s, rescuer, ev, fake = await crashed_then_repeated(setup, monkeypatch, other)
    setup["clock"].now += 6
    assert await rescuer.drain(include_pending=False) == 1, "the retry of 'other'"
    assert len(other.sent) == 3

    assert await rescuer.reclaim_once() == 1
    await rescuer.drain(include_pending=False)

    assert (len(fake.sent), len(other.sent)) == (2, 3), "nothing sent again"
    for name in ("fake", "other"):
        record = await rescuer.store.get(delivery_id(ev.id, "all", name))
        assert record is not None and record.status is DeliveryStatus.DELIVERED
        assert outcomes(record)[-1] == "duplicate"
    assert await pending(redis, s) == 0


async def test_lookup_failure_sends_anyway(
    setup: dict[str, Any], redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = setup["settings"]()
    fake = FakeChannel("fake")
    w = setup["worker"](s, {"fake": fake})
    await w.start()

    async def unreachable(ids: Any) -> Any:
        raise BrokerUnavailable("connection reset")

    monkeypatch.setattr(w.store, "current", unreachable)
    await setup["publish"](s, event())
    assert await w.drain() == 1
    assert len(fake.sent) == 1, "at least once: a failed lookup never skips a delivery"
    assert await pending(redis, s) == 0


async def test_duplicates_across_two_workers_are_delivered_at_least_once(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](consumer={"batch_size": 3})
    fake = FakeChannel("fake")
    events = [event(resource={"type": "capsule", "id": f"c{i}"}) for i in range(30)]
    await setup["publish"](s, *events, *reversed(events))
    w1 = setup["worker"](s, {"fake": fake}, name="a")
    w2 = setup["worker"](s, {"fake": fake}, name="b")
    await w1.start()
    await w2.start()
    assert sum(await asyncio.gather(w1.drain(), w2.drain())) == 60
    assert {m.event.id for m in fake.sent} == {e.id for e in events}
    assert len(fake.sent) < 60, "most duplicates were caught"
    for ev in events:
        record = await w1.store.get(delivery_id(ev.id, "all", "fake"))
        assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert await pending(redis, s) == 0


async def test_due_retry_of_a_delivery_delivered_meanwhile_is_not_sent(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    s = setup["settings"](consumer={"retry_schedule": ["5s"]})
    fake = FakeChannel("fake", SendResult(OutcomeClass.RETRYABLE, status=503, error="HTTP 503"))
    w, ev = await published_and_drained(setup, s, fake)
    did = delivery_id(ev.id, "all", "fake")
    record = await w.store.get(did)
    assert record is not None and record.status is DeliveryStatus.RETRYING
    # Another worker delivered it (the same event in another entry) and
    # committed while this retry was scheduled.
    record.status, record.attempts = DeliveryStatus.DELIVERED, 2
    await w.committer.commit([Settlement(records=[record])], setup["clock"].now)

    setup["clock"].now += 6
    assert await w.drain() == 1
    assert len(fake.sent) == 1, "the retry found it delivered"
    assert await redis.zcard(Keys(s.broker.prefix).retries) == 0
    stored = await w.store.get(did)
    assert stored is not None and stored.status is DeliveryStatus.DELIVERED


async def test_a_failing_template_fails_only_its_own_delivery(
    setup: dict[str, Any], redis: aioredis.Redis
) -> None:
    # RuntimeError (a dict mutated while iterated) escaped the renderer before: the
    # event's other deliveries were sent again on every receive (issue 12, item 3).
    hostile = "{% set d = {'a': 1} %}{% for k in d %}{{ d.update({k ~ 'x': 1}) }}{% endfor %}"
    s = setup["settings"](
        channels=[channel_spec("good"), channel_spec("bad")],
        subscriptions=[
            subscription("plain", channels=("good",)),
            subscription("templated", channels=("bad",), body_template=hostile),
        ],
    )
    good, bad = FakeChannel("good"), FakeChannel("bad")
    w = setup["worker"](s, {"good": good, "bad": bad})
    await w.start()
    ev = event()
    await setup["publish"](s, ev)
    assert await w.drain() == 1
    assert await w.drain() == 0  # nothing comes back to be sent again
    assert len(good.sent) == 1 and bad.sent == []
    failed = await w.store.get(delivery_id(ev.id, "templated", "bad"))
    assert failed is not None and failed.status is DeliveryStatus.FAILED
    assert "'templated' body_template" in (failed.reason or "") + (failed.last_error or "")
    assert "RuntimeError" in (failed.reason or "") + (failed.last_error or "")
    sent = await w.store.get(delivery_id(ev.id, "plain", "good"))
    assert sent is not None and sent.status is DeliveryStatus.DELIVERED
    assert await pending(redis, s) == 0 and await w.dead_letters.entries() == []
