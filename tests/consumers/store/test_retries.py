"""The retry schedule: delays, jitter bounds, Retry-After, exhaustion."""

from __future__ import annotations

import random

import pytest

from consumers.store.retries import RetryPolicy
from eventbus.settings import DEFAULT_RETRY_SCHEDULE, Settings


def test_default_schedule_is_the_documented_one() -> None:
    assert Settings().consumer.retry_schedule == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert tuple(DEFAULT_RETRY_SCHEDULE) == (5, 300, 1800, 7200, 18000, 36000, 36000)


@pytest.mark.parametrize("attempts", range(1, 8))
def test_jitter_stays_within_twenty_percent(attempts: int) -> None:
    policy = RetryPolicy(DEFAULT_RETRY_SCHEDULE, jitter=0.2)
    base = DEFAULT_RETRY_SCHEDULE[attempts - 1]
    rng = random.Random(attempts)
    delays = [policy.delay(attempts, rng=rng) for _ in range(2000)]
    assert all(d is not None and 0.8 * base <= d <= 1.2 * base for d in delays)
    spread = max(d for d in delays if d is not None) - min(d for d in delays if d is not None)
    assert spread > 0.3 * base, "jitter actually spreads retries"


def test_exhausted_after_the_last_step() -> None:
    policy = RetryPolicy([1.0, 2.0], jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3)] == [1.0, 2.0, None]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param(30.0, 30.0, id="honoured"),
        pytest.param(0.0, 1.0, id="at-least-a-second"),
        pytest.param(10 * 86400.0, 3600.0, id="capped"),
    ],
)
def test_retry_after_is_honoured_within_bounds(retry_after: float, expected: float) -> None:
    policy = RetryPolicy([5.0], jitter=0.2, retry_after_max=3600)
    assert policy.delay(1, retry_after) == expected


def test_patience_is_the_schedule_or_retry_after_max() -> None:
    assert RetryPolicy([60.0, 600.0], retry_after_max=30.0).patience == 660.0
    assert RetryPolicy([1.0], retry_after_max=3600.0).patience == 3600.0
