"""The per-minute attempt counters the breaker's ``record`` script keeps for the dashboard."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from consumers.channels.base import OutcomeClass, SendResult
from consumers.store import MINUTE_SLOTS, BreakerStore, Minute
from eventbus.keys import Keys
from eventbus.settings import Settings

from . import test_breaker
from .test_breaker import DOWN, LIMITED, OK, Build, Clock, outcomes

pytestmark = pytest.mark.integration
settings, build, clock = test_breaker.settings, test_breaker.build, test_breaker.clock

GONE = SendResult(OutcomeClass.PERMANENT, status=410, error="HTTP 410 for token=s3cr3t")


async def test_a_batch_folds_into_its_minute(
    settings: Callable[..., Settings], build: Build, clock: Clock, redis: aioredis.Redis
) -> None:
    s = settings(consecutive=1000, min_attempts=1000)
    breaker = build(s)
    store = BreakerStore(redis, Keys(s.broker.prefix))
    minute = int(clock.now // 60) * 60
    await outcomes(breaker, OK, DOWN, OK, LIMITED, GONE, DOWN)
    await outcomes(breaker, OK)
    clock.now += 60
    await outcomes(breaker, DOWN)
    found = await store.minutes("hook", clock.now - 24 * 3600)
    assert found == [Minute(minute, 3, 3), Minute(minute + 60, 0, 1)], (
        "rate limited is no attempt; retryable and permanent are both failures"
    )
    assert await store.minutes("hook", clock.now) == [Minute(minute + 60, 0, 1)]
    assert await store.minutes("other", clock.now - 3600) == []


async def test_the_ring_is_bounded_expires_and_holds_no_text(
    settings: Callable[..., Settings], build: Build, clock: Clock, redis: aioredis.Redis
) -> None:
    s = settings(consecutive=1000, min_attempts=1000)
    breaker = build(s)
    keys = Keys(s.broker.prefix)
    store = BreakerStore(redis, keys)
    await outcomes(breaker, GONE, OK)
    clock.now += 60 * MINUTE_SLOTS  # the same slot, 25 h later
    await outcomes(breaker, GONE)
    key = keys.channel_minutes("hook")
    assert key.startswith(keys.tag + ":")
    assert await redis.hlen(key) == 1, "the slot of 25 h ago was started afresh"
    [minute] = await store.minutes("hook", clock.now - 25 * 3600)
    assert (minute.delivered, minute.failed) == (0, 1)
    ttl = await redis.ttl(key)
    assert 0 < ttl <= MINUTE_SLOTS * 60
    values = await redis.hvals(key)
    assert all(v.replace(b":", b"").isdigit() for v in values), values
    assert b"s3cr3t" not in b"".join(values)
