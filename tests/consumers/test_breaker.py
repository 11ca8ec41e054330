"""The circuit breaker's decisions on the real Redis, with an injected clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.breaker import Breaker, breaker_rules
from consumers.channels.base import OutcomeClass, SendResult
from consumers.metrics import Metrics
from consumers.store import BreakerStore, CircuitState
from eventbus.keys import Keys
from eventbus.settings import Settings

pytestmark = pytest.mark.integration

OK = SendResult(OutcomeClass.DELIVERED, status=200)
DOWN = SendResult(OutcomeClass.RETRYABLE, status=503, error="HTTP 503")
LIMITED = SendResult(OutcomeClass.RATE_LIMITED, status=429, retry_after=1.0)


class Clock:
    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


Build = Callable[..., Breaker]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    def make(**breaker: Any) -> Settings:
        channels = [{"name": "hook", "type": "webhook", "url": "https://example.com/hook"}]
        return make_settings(breaker=breaker, channels=channels)

    return make


@pytest.fixture
def build(redis: aioredis.Redis, clock: Clock) -> Build:
    def make(s: Settings, metrics: Metrics | None = None) -> Breaker:
        return Breaker(s, BreakerStore(redis, Keys(s.broker.prefix)), metrics=metrics, clock=clock)

    return make


async def outcomes(breaker: Breaker, *results: SendResult) -> list[tuple[str, str]]:
    for result in results:
        breaker.observe("hook", result)
    return await breaker.flush()


@pytest.mark.parametrize(
    ("ok", "failed", "opens"),
    [
        pytest.param(3, 7, True, id="ratio-0.7-of-10"),
        pytest.param(4, 6, False, id="ratio-0.6"),
        pytest.param(2, 7, False, id="9-attempts-too-few"),
    ],
)
async def test_opens_on_failure_ratio(
    settings: Callable[..., Settings], build: Build, clock: Clock, ok: int, failed: int, opens: bool
) -> None:
    breaker = build(settings())
    # interleaved, so no run of failures is long enough to count on its own
    results = [OK] * ok + [DOWN] * failed
    await outcomes(breaker, *results[::2], *results[1::2])

    view = breaker.views["hook"]
    assert view.state is (CircuitState.OPEN if opens else CircuitState.CLOSED)
    assert breaker.blocked("hook") is opens
    assert (view.attempts, view.failures) == (ok + failed, failed)
    if opens:
        assert view.until == pytest.approx(clock.now + 60)
        assert view.last_error == "HTTP 503"


async def test_opens_on_consecutive_failures(
    settings: Callable[..., Settings], build: Build
) -> None:
    breaker = build(settings(consecutive=5, min_attempts=1000))
    await outcomes(breaker, DOWN, DOWN, DOWN, DOWN)
    assert not breaker.blocked("hook"), "four in a row is not five"
    await outcomes(breaker, OK, DOWN, DOWN, DOWN, DOWN)
    assert not breaker.blocked("hook"), "a success ends the run"
    await outcomes(breaker, DOWN)
    assert breaker.views["hook"].consecutive == 5
    assert breaker.blocked("hook")


async def test_rate_limited_is_not_an_outcome(
    settings: Callable[..., Settings], build: Build
) -> None:
    breaker = build(settings(consecutive=2))
    await outcomes(breaker, DOWN, LIMITED, LIMITED)
    assert not breaker.blocked("hook")
    assert breaker.views["hook"].attempts == 1


async def test_old_failures_leave_the_window(
    settings: Callable[..., Settings], build: Build, clock: Clock
) -> None:
    breaker = build(settings(window="5m"))
    await outcomes(breaker, *[DOWN] * 6)
    clock.now += 301
    await outcomes(breaker, *[DOWN] * 4)
    view = breaker.views["hook"]
    assert view.attempts == 4, "the six of five minutes ago no longer count"
    assert view.state is CircuitState.CLOSED


async def test_one_of_two_workers_probes_then_success_closes(
    settings: Callable[..., Settings], build: Build, clock: Clock
) -> None:
    s = settings(consecutive=3)
    first, second = build(s), build(s)
    await outcomes(first, DOWN, DOWN, DOWN)
    await second.refresh()
    assert second.blocked("hook"), "the other worker sees the circuit open"
    held = await second.admit("hook")
    assert held is not None and 59 <= held <= 66, "held back until the cooldown ends"

    clock.now += 61
    verdicts = await asyncio.gather(first.admit("hook"), second.admit("hook"))
    assert verdicts.count(None) == 1, "exactly one probe"
    prober, waiter = (first, second) if verdicts[0] is None else (second, first)
    assert waiter.views["hook"].state is CircuitState.HALF_OPEN
    assert await prober.admit("hook") is not None, "one probe at a time, even here"

    await outcomes(prober, OK)
    assert prober.views["hook"].state is CircuitState.CLOSED
    assert prober.views["hook"].attempts == 1, "the failures that opened it are forgotten"
    await waiter.refresh()
    assert not waiter.blocked("hook")
    assert await waiter.admit("hook") is None


async def test_failed_probe_reopens_with_doubled_cooldown(
    settings: Callable[..., Settings], build: Build, clock: Clock
) -> None:
    metrics = Metrics()
    breaker = build(settings(consecutive=1, cooldown="1m", max_cooldown="3m"), metrics)
    await outcomes(breaker, DOWN)
    gauge = metrics.circuit_state.labels("hook")
    assert gauge._value.get() == 2
    cooldowns = []
    for _ in range(3):
        clock.now = breaker.views["hook"].until + 0.1
        assert await breaker.admit("hook") is None, "the probe goes"
        assert gauge._value.get() == 1
        await outcomes(breaker, DOWN)
        view = breaker.views["hook"]
        assert view.state is CircuitState.OPEN
        assert view.until == pytest.approx(clock.now + view.cooldown)
        cooldowns.append(view.cooldown)
    assert cooldowns == [120, 180, 180], "doubled each time, up to breaker.max_cooldown"


async def test_lost_probe_is_taken_again_after_its_lease(
    settings: Callable[..., Settings], build: Build, clock: Clock
) -> None:
    s = settings(consecutive=1)
    first, second = build(s), build(s)
    await outcomes(first, DOWN)
    clock.now += 61
    assert await first.admit("hook") is None  # first probes, then dies
    await second.refresh()
    assert await second.admit("hook") is not None
    clock.now += first.lease + 1
    assert await second.admit("hook") is None, "the probe's lease ran out"


async def test_disabled_after_failing_for_the_span(
    settings: Callable[..., Settings], build: Build, clock: Clock, redis: aioredis.Redis
) -> None:
    s = settings(consecutive=1, disable_after="1h", max_cooldown="30m")
    breaker = build(s)
    assert await outcomes(breaker, DOWN) == []
    started = clock.now
    while clock.now < started + 3600:
        clock.now = breaker.views["hook"].until + 0.1
        assert await breaker.admit("hook") is None
        disabled = await outcomes(breaker, SendResult(OutcomeClass.RETRYABLE, error="timed out"))
    assert disabled == [
        (
            "hook",
            "every attempt failed for 1h (breaker.disable_after); last error: timed out",
        )
    ]
    raw = await redis.hget(Keys(s.broker.prefix).channel_state, "hook")
    state = json.loads(raw)
    assert state["disabled"] is True and state["reason"] == disabled[0][1]
    assert await outcomes(breaker, DOWN) == [], "disabled once"


async def test_a_success_restarts_the_span(
    settings: Callable[..., Settings], build: Build, clock: Clock
) -> None:
    breaker = build(settings(consecutive=1000, disable_after="1h"))
    await outcomes(breaker, DOWN)
    clock.now += 3000
    await outcomes(breaker, OK)
    clock.now += 3000
    assert await outcomes(breaker, DOWN) == [], "failing for 50 minutes only"
    assert breaker.views["hook"].failing_since == clock.now


async def test_sparse_failures_do_not_disable(
    settings: Callable[..., Settings], build: Build, clock: Clock
) -> None:
    breaker = build(settings(disable_after="1h"))
    await outcomes(breaker, DOWN)
    clock.now += 7200
    assert await outcomes(breaker, DOWN) == [], "an idle channel failing twice is not down"
    assert breaker.views["hook"].state is CircuitState.CLOSED


async def test_channel_override_and_disabled_breaker(
    make_settings: Callable[..., Settings], build: Build
) -> None:
    s = make_settings(
        breaker={"consecutive": 7},
        channels=[
            {
                "name": "hook",
                "type": "webhook",
                "url": "https://a.example/",
                "breaker": {"enabled": False},
            },
            {
                "name": "other",
                "type": "webhook",
                "url": "https://b.example/",
                "breaker": {"cooldown": "5m"},
            },
        ],
    )
    rules = breaker_rules(s)
    assert (rules["other"].consecutive, rules["other"].cooldown) == (7, 300)
    breaker = build(s)
    await outcomes(breaker, *[DOWN] * 10)
    assert "hook" not in breaker.views, "breaker.enabled: false counts nothing"


async def test_without_a_store_nothing_blocks(settings: Callable[..., Settings]) -> None:
    breaker = Breaker(settings())
    breaker.observe("hook", DOWN)
    assert await breaker.flush() == []
    assert not breaker.blocked("hook") and await breaker.admit("hook") is None
