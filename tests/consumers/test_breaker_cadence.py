"""When the breaker's outcomes are counted: successes may wait, failures never do."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers import breaker as breaker_module
from consumers.breaker import FLUSH_EVERY
from consumers.metrics import Metrics
from consumers.pipeline import Pipeline
from consumers.store import BreakerStore, CircuitState
from eventbus.keys import Keys
from eventbus.settings import Settings

from . import test_breaker
from .test_breaker import DOWN, OK, Build, Clock

pytestmark = pytest.mark.integration
settings, build, clock = test_breaker.settings, test_breaker.build, test_breaker.clock


async def counted(redis: aioredis.Redis, s: Settings, clock: Clock) -> tuple[int, int]:
    found = await BreakerStore(redis, Keys(s.broker.prefix)).minutes("hook", clock.now - 3600)
    return sum(m.delivered for m in found), sum(m.failed for m in found)


async def test_successes_wait_while_work_is_in_flight_then_are_all_counted(
    settings: Callable[..., Settings], build: Build, clock: Clock, redis: aioredis.Redis
) -> None:
    s = settings()
    breaker = build(s)
    for _ in range(3000):  # more than the 1000 outcomes kept per channel: runs are one item
        breaker.observe("hook", OK)
    assert await breaker.flush_due(last=False) == []
    assert breaker.waiting
    assert await counted(redis, s, clock) == (0, 0), "counted within FLUSH_EVERY, not now"
    clock.now += FLUSH_EVERY
    await breaker.flush_due(last=False)
    assert not breaker.waiting
    assert await counted(redis, s, clock) == (3000, 0)
    assert breaker.views["hook"].attempts == 3000


async def test_the_last_work_in_flight_counts_at_once(
    settings: Callable[..., Settings], build: Build, clock: Clock, redis: aioredis.Redis
) -> None:
    s = settings()
    breaker = build(s)
    breaker.observe("hook", OK)
    await breaker.flush_due(last=True)
    assert await counted(redis, s, clock) == (1, 0)


async def test_a_failure_is_counted_at_once_with_the_successes_before_it(
    settings: Callable[..., Settings], build: Build, clock: Clock, redis: aioredis.Redis
) -> None:
    s = settings(consecutive=3)
    breaker = build(s)
    breaker.observe("hook", OK)
    breaker.observe("hook", OK)
    await breaker.flush_due(last=False)
    for _ in range(3):
        breaker.observe("hook", DOWN)
    await breaker.flush_due(last=False)
    assert not breaker.waiting
    assert await counted(redis, s, clock) == (2, 3)
    assert breaker.views["hook"].state is CircuitState.OPEN


async def test_a_success_on_an_open_circuit_is_counted_at_once(
    settings: Callable[..., Settings], build: Build, clock: Clock
) -> None:
    s = settings(consecutive=1)
    breaker = build(s)
    breaker.observe("hook", DOWN)
    await breaker.flush_due(last=False)
    assert breaker.blocked("hook")
    breaker.observe("hook", OK)  # a probe's success closes the circuit: not a count only
    await breaker.flush_due(last=False)
    assert not breaker.blocked("hook")


class _Breaker:
    """Waits like the real one; says when the late count came."""

    def __init__(self) -> None:
        self.waiting = True
        self.counted = asyncio.Event()

    async def flush_due(self, *, last: bool) -> list[tuple[str, str]]:
        if last:
            self.waiting = False
            self.counted.set()
        return []


class _Dispatcher:
    def __init__(self) -> None:
        self.breaker = _Breaker()


async def test_the_pipeline_counts_what_waited_without_another_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(breaker_module, "FLUSH_EVERY", 0.01)
    dispatcher = _Dispatcher()
    none: Any = None
    pipe = Pipeline(
        dispatcher=dispatcher,  # type: ignore[arg-type]
        committer=none,
        store=none,
        streams=none,
        limit=10,
        consumer="c",
        metrics=Metrics(),
        clock=lambda: 0.0,
    )
    await pipe.after.count(last=False)
    assert not dispatcher.breaker.counted.is_set()
    await asyncio.wait_for(dispatcher.breaker.counted.wait(), 5)
    await pipe.finish(1.0)
    assert not dispatcher.breaker.waiting
