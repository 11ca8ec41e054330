"""Token buckets: properties with a fake clock, admission, 429 feedback, wrapping."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.channels.base import ChannelDeps, Message, OutcomeClass, SendResult
from consumers.channels.pacing import RateLimitedChannel
from consumers.channels.registry import build_channel
from consumers.ratelimit import (
    MAX_WAIT,
    Bucket,
    BucketSpec,
    ChannelLimiter,
    limiter_for,
)
from eventbus.settings import ChannelSpec

from .channels.support import Recorder, make_message, mock_client

EPS = 1e-9


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] < t - window - EPS:
            start += 1
        best = max(best, end - start + 1)
    return best


specs = st.builds(
    BucketSpec,
    rate=st.floats(0.5, 50),
    per=st.floats(0.1, 5),
    burst=st.integers(1, 10),
)
gaps = st.lists(st.floats(0, 3), min_size=1, max_size=80)


@settings(max_examples=150, deadline=None)
@given(specs, gaps, st.lists(st.tuples(st.integers(0, 79), st.floats(0, 5)), max_size=3))
def test_bucket_never_exceeds_rate_over_any_window(
    spec: BucketSpec, arrivals: list[float], pauses: list[tuple[int, float]]
) -> None:
    clock = FakeClock()
    bucket = Bucket(spec, clock)
    pause_at = dict(pauses)
    uses: list[float] = []
    for index, gap in enumerate(arrivals):
        clock.now += gap
        if index in pause_at:
            bucket.pause(clock.now + pause_at[index])
        use = clock.now + bucket.delay(clock.now)
        bucket.reserve(use)
        uses.append(use)
    for window in (0.0, spec.interval / 2, spec.interval, spec.per, 3 * spec.per, 10.0):
        allowed = spec.burst + window / spec.interval
        assert max_in_window(uses, window) <= allowed + EPS


@settings(max_examples=100, deadline=None)
@given(specs, st.integers(1, 60))
def test_waiting_requests_are_served_in_order_and_in_bounded_time(
    spec: BucketSpec, count: int
) -> None:
    """No starvation: every queued request gets a slot, FIFO, within count * interval."""
    clock = FakeClock()
    limiter = ChannelLimiter(spec, clock=clock, sleep=clock.sleep)
    waits = []
    for _ in range(count):
        admitted, wait = limiter.reserve("", may_refuse=False)
        assert admitted
        waits.append(wait)
    assert waits == sorted(waits)
    assert waits[-1] <= max(0, count - spec.burst) * spec.interval + EPS


@settings(max_examples=60, deadline=None)
@given(specs, st.integers(1, 40), st.floats(0.1, 10))
def test_refused_requests_get_through_when_they_come_back(
    spec: BucketSpec, count: int, spacing: float
) -> None:
    """A refused request that returns after its retry_after is admitted (no starvation)."""
    clock = FakeClock()
    limiter = ChannelLimiter(spec, clock=clock, sleep=clock.sleep, max_wait=MAX_WAIT)
    for _ in range(count):
        admitted, wait = limiter.reserve("", may_refuse=True)
        if not admitted:
            clock.now += wait
            admitted, wait = limiter.reserve("", may_refuse=True)
            assert admitted and wait <= EPS
        clock.now += spacing / count


async def test_acquire_waits_when_short_refuses_when_long() -> None:
    clock = FakeClock()
    limiter = ChannelLimiter(BucketSpec(1, 1.0, 1), clock=clock, sleep=clock.sleep)
    assert await limiter.acquire("", may_refuse=True) is None
    assert await limiter.acquire("", may_refuse=True) is None  # waited 1 s
    assert clock.slept == [1.0]
    clock.now -= 1.0  # as if the slot were 2 s away... then 3 s away
    assert await limiter.acquire("", may_refuse=True) is None
    clock.now -= 2.0
    wait = await limiter.acquire("", may_refuse=True)
    assert wait is not None and wait > MAX_WAIT


async def test_per_key_buckets_and_penalty() -> None:
    clock = FakeClock()
    limiter = ChannelLimiter(
        BucketSpec(30, 1.0, 30), BucketSpec(1, 1.0, 1), clock=clock, sleep=clock.sleep
    )
    assert limiter.reserve("chat:1", may_refuse=True) == (True, 0.0)
    assert limiter.reserve("chat:2", may_refuse=True) == (True, 0.0)  # other chat: no wait
    assert limiter.reserve("chat:1", may_refuse=True) == (True, 1.0)
    limiter.penalize("chat:2", 30)
    admitted, wait = limiter.reserve("chat:2", may_refuse=True)
    assert not admitted and wait == pytest.approx(30)
    assert limiter.reserve("chat:3", may_refuse=True)[0]


def test_defaults_and_yaml_override() -> None:
    telegram = limiter_for(ChannelSpec(name="t", type="telegram"), "telegram")
    assert telegram is not None and telegram.key_spec is not None
    assert telegram.channel_spec == BucketSpec(30, 1.0, 30)
    discord = limiter_for(ChannelSpec(name="d", type="discord"), "discord")
    assert discord is not None and discord.channel_spec == BucketSpec(5, 2.0, 5)
    assert limiter_for(ChannelSpec(name="s", type="slack"), "slack") is None
    custom = limiter_for(
        ChannelSpec(name="s", type="slack", rate_limit={"rate": 2, "per": 1, "burst": 4}), "slack"
    )
    assert custom is not None and custom.channel_spec == BucketSpec(2, 1.0, 4)


class CountingChannel:
    type = "console"

    def __init__(self, *answers: SendResult) -> None:
        self.name = "c"
        self.sent = 0
        self.answers = list(answers)

    def describe(self) -> str:
        return "counting"

    async def send(self, message: Message) -> SendResult:
        self.sent += 1
        return self.answers.pop(0) if self.answers else SendResult(OutcomeClass.DELIVERED)


async def test_wrapper_refuses_without_calling_and_learns_from_429() -> None:
    clock = FakeClock()
    inner = CountingChannel(SendResult(OutcomeClass.RATE_LIMITED, status=429, retry_after=60))
    channel = RateLimitedChannel(
        inner, ChannelLimiter(BucketSpec(10, 1.0, 10), clock=clock, sleep=clock.sleep)
    )
    first = await channel.send(make_message())
    assert first.outcome is OutcomeClass.RATE_LIMITED and inner.sent == 1
    second = await channel.send(make_message())
    assert second.outcome is OutcomeClass.RATE_LIMITED and second.retry_after == pytest.approx(60)
    assert inner.sent == 1  # the service was not called
    clock.now += 60
    assert (await channel.send(make_message())).ok and inner.sent == 2


async def test_discord_burst_through_the_registry() -> None:
    clock = FakeClock()
    recorder = Recorder(lambda r: httpx.Response(204))
    async with mock_client(recorder) as client:
        channel = build_channel(
            ChannelSpec(name="d", url="discord://tok@1"),
            ChannelDeps(http=client),
            clock=clock,
            sleep=clock.sleep,
        )
        results = [await channel.send(make_message()) for _ in range(8)]
    # 5 at once, then one every 0.4 s (all within MAX_WAIT)
    assert all(r.ok for r in results)
    assert clock.slept == pytest.approx([0.4] * 3)


async def test_telegram_parts_are_paced_per_chat() -> None:
    clock = FakeClock()
    recorder = Recorder(lambda r: httpx.Response(200, json={"ok": True}))
    token = "123456:ABCDEFGHIJKLMNOP"
    async with mock_client(recorder) as client:
        channel = build_channel(
            ChannelSpec(name="t", url=f"telegram://{token}@telegram?chats=1,2&parsemode=none"),
            ChannelDeps(http=client),
            clock=clock,
            sleep=clock.sleep,
        )
        body = "\n".join("x" * 100 for _ in range(160))  # 4 parts
        result: Any = await channel.send(make_message(body=body))
    assert result.ok
    assert len(recorder.requests) == 8
    # each chat: a burst of 3 parts, then the 4th one second later
    assert sum(clock.slept) == pytest.approx(2.0)
