"""Silences and cooldowns through two real workers on the real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.routing.silence_rules import new_silence
from consumers.store import DeliveryRecord, DeliveryStatus, SilenceStore, delivery_id
from consumers.worker import Worker
from eventbus.envelope import Event
from eventbus.keys import Keys
from eventbus.settings import Settings
from publishers import Publisher

from ..fakes import FakeChannel, channel_spec, event, subscription

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Commits:
    """Every record the spied-on workers commit, by event id, with a wait."""

    def __init__(self) -> None:
        self.records: dict[str, list[DeliveryRecord]] = {}
        self._changed = asyncio.Condition()

    def spy(self, worker: Worker) -> None:
        real = worker.committer.commit

        async def commit(settlements: Any, now: float) -> None:
            await real(settlements, now)
            async with self._changed:
                for settlement in settlements:
                    for record in settlement.records:
                        self.records.setdefault(record.event_id, []).append(record)
                self._changed.notify_all()

        worker.committer.commit = commit  # type: ignore[method-assign]

    async def until(self, check: Callable[[], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(check)

    def status(self, event_id: str) -> DeliveryStatus:
        [record] = self.records[event_id]
        return record.status

    def all_in(self, ids: Iterable[str]) -> bool:
        return all(i in self.records for i in ids)


@dataclass
class Setup:
    settings: Settings
    fake: FakeChannel
    commits: Commits
    w1: Worker
    w2: Worker


@pytest.fixture
async def two_workers(
    redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Any]]:
    made: list[Worker] = []

    async def start(*, batch: int = 10, **sub: Any) -> Setup:
        settings = make_settings(
            consumer={"block": 0.1, "batch_size": batch, "retry_jitter": 0},
            channels=[channel_spec("fake")],
            subscriptions=[subscription("all", ("fake",), **sub)],
        )
        fake, commits = FakeChannel("fake"), Commits()
        workers = []
        for name in ("w1", "w2"):
            consumer = settings.consumer.model_copy(update={"name": name})
            worker = Worker(
                settings.model_copy(update={"consumer": consumer}),
                redis=redis,
                channels={"fake": fake},
            )
            commits.spy(worker)
            await worker.start()
            made.append(worker)
            workers.append(worker)
        return Setup(settings, fake, commits, workers[0], workers[1])

    yield start
    for worker in made:
        worker.stop()


@contextlib.asynccontextmanager
async def running(*workers: Worker) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)


class Flow:
    """Publishes one ``host.down`` every 20 ms, noting when each publish began."""

    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        self.settings, self.redis = settings, redis
        self.started: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def _publish(self) -> None:
        async with Publisher(self.settings, redis=self.redis) as bus:
            while not self._stop.is_set():
                ev = event(event="host.down", resource={"type": "host", "id": "h1"})
                self.started[ev.id] = time.time()
                await bus.publish(ev)
                with contextlib.suppress(TimeoutError):  # the pace of the flow, not a wait
                    await asyncio.wait_for(self._stop.wait(), 0.02)

    def __enter__(self) -> Flow:
        self._task = asyncio.create_task(self._publish())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    async def stopped(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    def after(self, moment: float) -> list[str]:
        return [i for i, at in self.started.items() if at > moment]


async def test_a_silence_mutes_flowing_events_within_a_second_and_expiring_restores(
    two_workers: Callable[..., Any], redis: aioredis.Redis
) -> None:
    run = await two_workers()
    store = SilenceStore(redis, Keys(run.settings.broker.prefix))
    books = [run.w1.silences, run.w2.silences]

    def committed(ids: list[str]) -> list[str]:
        return [i for i in ids if i in run.commits.records]

    def muted() -> list[str]:
        return committed(flow.after(honoured))

    async with running(run.w1, run.w2):
        with Flow(run.settings, redis) as flow:
            await run.fake.wait_for(3)  # flowing, and delivered

            added = time.time()
            silence = new_silence(
                team="team-1",
                matchers=["event=host.*", "resource=host:h1"],
                duration=3600,
                comment="maintenance",
                created_by="test",
                now=added,
            )
            version = await store.add(silence, added)
            await asyncio.wait_for(asyncio.gather(*(b.until_version(version) for b in books)), 1)
            honoured = time.time()
            assert honoured - added < 1.0
            await run.commits.until(lambda: len(muted()) >= 5)
            snapshot = {i: run.commits.status(i) for i in muted()}

            expiring = time.time()
            assert await store.expire(silence.id)
            await asyncio.wait_for(
                asyncio.gather(*(b.until_version(version + 1) for b in books)), 1
            )
            restored = time.time()
            assert restored - expiring < 1.0
            await run.commits.until(lambda: len(committed(flow.after(restored))) >= 5)
            await flow.stopped()
        await run.commits.until(lambda: run.commits.all_in(flow.started))

    assert set(snapshot.values()) == {DeliveryStatus.SILENCED}
    for event_id in snapshot:
        [record] = run.commits.records[event_id]
        assert record.refers_to == silence.id
    for event_id in flow.after(restored):
        assert run.commits.status(event_id) is DeliveryStatus.DELIVERED
    delivered = [i for i in flow.started if run.commits.status(i) is DeliveryStatus.DELIVERED]
    assert sorted(m.delivery_id for m in run.fake.sent) == sorted(
        delivery_id(i, "all", "fake") for i in delivered
    ), "what was delivered was sent once; nothing silenced was sent"


def host_down(host: str) -> Event:
    return event(event="host.down", resource={"type": "host", "id": host})


async def test_cooldown_is_shared_by_the_workers(
    two_workers: Callable[..., Any], redis: aioredis.Redis
) -> None:
    run = await two_workers(batch=1, cooldown="1h", cooldown_key=["event", "resource.id"])

    async def publish(*events: Event) -> list[str]:
        async with Publisher(run.settings, redis=redis) as bus:
            await bus.publish_many(list(events))
        return [e.id for e in events]

    # One worker sends the first of a key; the other, which never saw it, suppresses.
    [first] = await publish(host_down("h1"))
    await run.w1.drain()
    [second] = await publish(host_down("h1"))
    await run.w2.drain()
    assert run.commits.status(first) is DeliveryStatus.DELIVERED
    assert run.commits.status(second) is DeliveryStatus.SUPPRESSED
    [record] = run.commits.records[second]
    assert record.refers_to == delivery_id(first, "all", "fake")
    assert "all[event=host.down, resource.id=h1]" in (record.reason or "")

    # Both at once, one entry per read: one notification per key, the rest suppressed.
    ids = await publish(*(host_down(h) for _ in range(10) for h in ("h1", "h2", "h3")))
    await asyncio.gather(run.w1.drain(), run.w2.drain())
    assert run.commits.all_in(ids)
    assert run.w1.processed > 1 and run.w2.processed > 1, "both took part"
    statuses = [run.commits.status(i) for i in ids]
    assert statuses.count(DeliveryStatus.DELIVERED) == 2, "h2 and h3 once each; h1 is cooling"
    assert statuses.count(DeliveryStatus.SUPPRESSED) == 28
    hosts = sorted(m.event.resource.id for m in run.fake.sent)
    assert hosts == ["h1", "h2", "h3"], "one notification per key per window"


async def test_a_worker_dying_after_reserving_a_window_loses_nothing_and_sends_once(
    redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        consumer={"block": 0.1, "claim_idle": 0},
        channels=[channel_spec("fake")],
        subscriptions=[subscription("all", ("fake",), cooldown="1h")],
    )
    stuck, alive = FakeChannel("fake"), FakeChannel("fake")
    stuck.gate = asyncio.Event()  # never opens: the worker dies while sending
    dying = Worker(settings, redis=redis, channels={"fake": stuck})
    consumer = settings.consumer.model_copy(update={"name": "w2"})
    other = Worker(
        settings.model_copy(update={"consumer": consumer}), redis=redis, channels={"fake": alive}
    )
    for worker in (dying, other):
        await worker.start()
    first = host_down("h1")
    async with Publisher(settings, redis=redis) as bus:
        await bus.publish(first)
        drained = asyncio.create_task(dying.drain())
        await asyncio.wait_for(stuck.started.wait(), 10)  # the window is reserved
        drained.cancel()
        dying.pipeline.abandon()  # gone before committing: its entry stays pending
        with contextlib.suppress(asyncio.CancelledError):
            await drained
        later = host_down("h1")
        await bus.publish(later)

    await other.drain()  # the later event: the dead worker's event holds the window
    assert await other.reclaim_once() == 1
    await other.pipeline.idle()

    assert [m.delivery_id for m in alive.sent] == [delivery_id(first.id, "all", "fake")]
    for ev, status in ((first, DeliveryStatus.DELIVERED), (later, DeliveryStatus.SUPPRESSED)):
        record = await other.store.get(delivery_id(ev.id, "all", "fake"))
        assert record is not None and record.status is status


async def test_a_repeated_event_keeps_its_delivered_record_when_a_silence_matches_it_since(
    two_workers: Callable[..., Any], redis: aioredis.Redis
) -> None:
    # Routing runs after the duplicate screen: a silence added after an event
    # was delivered does not turn its record into "silenced" when the event
    # is published again (a retried publish, a replay).
    run = await two_workers()
    store = SilenceStore(redis, Keys(run.settings.broker.prefix))
    ev = event(event="host.down", resource={"type": "host", "id": "h1"})
    async with running(run.w1), Publisher(run.settings, redis=redis) as bus:
        await bus.publish(ev)
        await run.commits.until(lambda: ev.id in run.commits.records)
        now = time.time()
        silence = new_silence(
            team="team-1",
            matchers=["event=host.*"],
            duration=3600,
            comment="after the fact",
            created_by="test",
            now=now,
        )
        version = await store.add(silence, now)
        await asyncio.wait_for(run.w1.silences.until_version(version), 5)
        await bus.publish(ev)
        later = event(event="host.down", resource={"type": "host", "id": "h2"})
        await bus.publish(later)  # after the repeat in the stream: settled after it
        await run.commits.until(lambda: later.id in run.commits.records)
    stored = await run.w1.store.get(delivery_id(ev.id, "all", "fake"))
    assert stored is not None and stored.status is DeliveryStatus.DELIVERED
    assert run.commits.status(later.id) is DeliveryStatus.SILENCED
    assert [m.delivery_id for m in run.fake.sent] == [delivery_id(ev.id, "all", "fake")]
