"""Alerts through two real workers on the real Redis: one raise for many failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.store import AlertStatus, DeliveryRecord, DeliveryStatus
from consumers.store.alerts import AlertStore
from consumers.worker import Worker
from eventbus.envelope import Event
from eventbus.keys import Keys
from eventbus.settings import Settings
from publishers import Publisher

from ..fakes import FakeChannel, channel_spec, event, subscription

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "backup-failed:h1"


def failure(**extra: Any) -> Event:
    return event(
        event="backup.run", outcome="error", error="disk full", alert={"key": KEY}, **extra
    )


def success() -> Event:
    return event(event="backup.run", outcome="success", alert={"key": KEY})


class Commits:
    """Every record the spied-on workers commit, with a wait."""

    def __init__(self) -> None:
        self.records: list[DeliveryRecord] = []
        self._changed = asyncio.Condition()

    def spy(self, worker: Worker) -> None:
        real = worker.committer.commit

        async def commit(settlements: Any, now: float) -> None:
            await real(settlements, now)
            async with self._changed:
                self.records += [r for s in settlements for r in s.records]
                self._changed.notify_all()

        worker.committer.commit = commit  # type: ignore[method-assign]

    async def until(self, count: int, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.records) >= count)


@dataclass
class Run:
    settings: Settings
    fake: FakeChannel
    commits: Commits
    workers: list[Worker]
    store: AlertStore


@pytest.fixture
async def two_workers(
    redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Any]]:
    made: list[Worker] = []

    async def start(**sub: Any) -> Run:
        settings = make_settings(
            consumer={"block": 0.1, "batch_size": 5, "retry_jitter": 0},
            channels=[channel_spec("fake")],
            subscriptions=[subscription("pager", ("fake",), **sub)],
        )
        fake, commits = FakeChannel("fake"), Commits()
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
        store = AlertStore(redis, Keys(settings.broker.prefix))
        return Run(settings, fake, commits, made[-2:], store)

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


async def publish(settings: Settings, redis: aioredis.Redis, events: list[Event]) -> None:
    async with Publisher(settings, redis=redis) as bus:
        for ev in events:
            await bus.publish(ev)


def transitions(fake: FakeChannel) -> list[tuple[str, str]]:
    return [(m.alert.transition, m.alert.id) for m in fake.sent if m.alert is not None]


async def test_fifty_failures_raise_once_a_success_resolves_and_a_failure_raises_anew(
    two_workers: Callable[..., Any], redis: aioredis.Redis
) -> None:
    run = await two_workers()
    async with running(*run.workers):
        # two publishers, 25 failures each, read by two workers at once
        await asyncio.gather(
            publish(run.settings, redis, [failure() for _ in range(25)]),
            publish(run.settings, redis, [failure() for _ in range(25)]),
        )
        await run.commits.until(50)
        firing = await run.store.get("team-1", KEY)
        assert firing is not None
        assert (firing.status, firing.count) == (AlertStatus.FIRING, 50)
        assert transitions(run.fake) == [("raised", firing.id)]
        statuses = sorted(r.status for r in run.commits.records)
        assert statuses.count(DeliveryStatus.DELIVERED) == 1
        assert statuses.count(DeliveryStatus.FOLDED) == 49
        folded = [r for r in run.commits.records if r.status is DeliveryStatus.FOLDED]
        assert all(r.refers_to == firing.id for r in folded)
        assert all(r.reason and f"folded into alert {firing.id}" in r.reason for r in folded)

        await publish(run.settings, redis, [success()])
        await run.commits.until(51)
        resolved = await run.store.get("team-1", KEY)
        assert resolved is not None and resolved.status is AlertStatus.RESOLVED
        assert transitions(run.fake) == [("raised", firing.id), ("resolved", firing.id)]
        [notice] = [m.alert for m in run.fake.sent[1:] if m.alert]
        assert notice.count == 50 and notice.resolved_at is not None

        await publish(run.settings, redis, [failure()])
        await run.commits.until(52)
    again = await run.store.get("team-1", KEY)
    assert again is not None and again.id != firing.id
    assert (again.status, again.count) == (AlertStatus.FIRING, 1)
    assert transitions(run.fake)[-1] == ("raised", again.id)
    assert len(run.fake.sent) == 3


async def test_an_acknowledge_notifies_only_when_listed(
    two_workers: Callable[..., Any], redis: aioredis.Redis
) -> None:
    run = await two_workers(notify_on=["raise", "acknowledge"])
    ack = event(
        event="backup.run",
        outcome=None,
        actor={"type": "user", "id": "u1", "name": "alice"},
        alert={"key": KEY, "action": "acknowledge"},
    )
    async with running(*run.workers):
        await publish(run.settings, redis, [failure()])
        await run.commits.until(1)
        await publish(run.settings, redis, [ack])
        await run.commits.until(2)
        await publish(run.settings, redis, [success()])
        await run.commits.until(3)
    assert [t for t, _ in transitions(run.fake)] == ["raised", "acknowledged"]
    last = run.commits.records[-1]
    assert last.status is DeliveryStatus.FOLDED and "resolved" in (last.reason or "")
    closed = await run.store.get("team-1", KEY)
    assert closed is not None and closed.acknowledged_by == "alice"


async def test_resolving_no_alert_is_recorded_and_not_sent(
    two_workers: Callable[..., Any], redis: aioredis.Redis
) -> None:
    run = await two_workers()
    async with running(*run.workers):
        await publish(run.settings, redis, [success()])
        await run.commits.until(1)
    [record] = run.commits.records
    assert record.status is DeliveryStatus.FOLDED
    assert "no open alert" in (record.reason or "")
    assert run.fake.sent == [] and await run.store.get("team-1", KEY) is None
