"""repeat_interval and auto-resolve with an injected clock, on the real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.channels.base import OutcomeClass, SendResult
from consumers.routing.alerts import due_key
from consumers.store import AlertStatus, AlertStore
from consumers.worker import Worker
from eventbus.catalog import ALERT_TRANSITION_TYPES, Catalog, Kind
from eventbus.envelope import Event
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import FakeChannel, channel_spec, event, subscription

pytestmark = pytest.mark.integration

KEY = "backup-failed:h1"


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def at(clock: Clock, **fields: Any) -> Event:
    stamp = datetime.fromtimestamp(clock(), UTC)
    return event(event="backup.run", team_id="team-1", timestamp=stamp, **fields)


def failure(clock: Clock) -> Event:
    return at(clock, outcome="error", error="disk full", alert={"key": KEY})


class Setup:
    def __init__(self, worker: Worker, fake: FakeChannel, clock: Clock, settings: Settings) -> None:
        self.worker, self.fake, self.clock, self.settings = worker, fake, clock, settings
        self.store = AlertStore(worker.redis, worker.keys)

    async def publish(self, *events: Event) -> None:
        async with Publisher(self.settings, redis=self.worker.redis) as bus:
            for ev in events:
                await bus.publish(ev)
        await self.worker.drain()

    def transitions(self) -> list[str]:
        return [m.alert.transition for m in self.fake.sent if m.alert is not None]

    @property
    def lease(self) -> float:
        return self.settings.consumer.delivery_timeout * 2 + 30


@pytest.fixture
def setup(redis: aioredis.Redis, make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    async def make(catalog: dict[str, Any] | None = None, **sub: Any) -> Setup:
        settings = make_settings(
            consumer={"block": 0.1, "retry_jitter": 0, "name": "w1"},
            catalog=catalog or {},
            channels=[channel_spec("fake")],
            subscriptions=[subscription("pager", ("fake",), **sub)],
        )
        clock, fake = Clock(), FakeChannel("fake")
        worker = Worker(settings, redis=redis, channels={"fake": fake}, clock=clock)
        await worker.start()
        return Setup(worker, fake, clock, settings)

    return make


async def test_repeat_interval_renotifies_while_firing_and_acknowledge_stops_it(
    setup: Callable[..., Any],
) -> None:
    run: Setup = await setup(repeat_interval="1h")
    await run.publish(failure(run.clock))
    assert run.transitions() == ["raised"]

    run.clock.offset += 1800
    await run.worker.drain()
    assert run.transitions() == ["raised"], "not due yet"

    run.clock.offset += 1801
    await run.worker.drain()
    assert run.transitions() == ["raised", "repeat"]
    run.clock.offset += run.lease  # fired again once its lease ran out: remembered, not re-sent
    await run.worker.drain()
    assert run.transitions() == ["raised", "repeat"]

    run.clock.offset += 3600
    await run.worker.drain()
    assert run.transitions() == ["raised", "repeat", "repeat"]
    repeats = [m.delivery_id for m in run.fake.sent[1:]]
    assert len(set(repeats)) == 2, "each repeat is its own delivery"

    ack = at(run.clock, outcome=None, alert={"key": KEY, "action": "acknowledge"})
    await run.publish(ack)
    for _ in range(3):
        run.clock.offset += 3600 + run.lease
        await run.worker.drain()
    assert run.transitions() == ["raised", "repeat", "repeat"]
    assert await run.worker.redis.zcard(due_key(run.worker.keys)) == 0


async def test_auto_resolve_resolves_an_untouched_alert_with_a_notice_saying_so(
    setup: Callable[..., Any],
) -> None:
    run: Setup = await setup(
        catalog={"types": {"backup.run": {"kind": "durable", "auto_resolve": "30m"}}}
    )
    await run.publish(failure(run.clock))
    run.clock.offset += 1200
    await run.publish(failure(run.clock))  # a touch re-arms it
    run.clock.offset += 1200
    await run.worker.drain()
    firing = await run.store.get("team-1", KEY)
    assert firing is not None and firing.status is AlertStatus.FIRING and firing.count == 2

    run.clock.offset += 601
    await run.worker.drain()
    assert run.transitions() == ["raised", "resolved"]
    resolved_notice = run.fake.sent[-1].alert
    assert resolved_notice is not None
    assert resolved_notice.reason == "auto-resolved: no event for 30m"
    closed = await run.store.get("team-1", KEY)
    assert closed is not None and closed.status is AlertStatus.RESOLVED
    assert closed.resolve_reason == "auto-resolved: no event for 30m"
    ttl = await run.worker.redis.ttl(run.worker.keys.alert("team-1", KEY))
    assert 0 < ttl <= 7 * 86400, "a resolved alert is kept for alerts.retention"

    run.clock.offset += run.lease  # fired again: remembered, not re-sent, and dropped
    await run.worker.drain()
    assert run.transitions() == ["raised", "resolved"]
    assert await run.worker.redis.zcard(due_key(run.worker.keys)) == 0


async def test_send_resolved_false_keeps_the_auto_resolve_quiet(setup: Callable[..., Any]) -> None:
    run: Setup = await setup(
        catalog={"types": {"backup.run": {"auto_resolve": "5m"}}}, send_resolved=False
    )
    await run.publish(failure(run.clock))
    run.clock.offset += 301
    await run.worker.drain()
    closed = await run.store.get("team-1", KEY)
    assert closed is not None and closed.status is AlertStatus.RESOLVED
    assert run.transitions() == ["raised"]


def test_a_catalog_type_with_an_unknown_key_is_a_clear_error(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(ValueError, match="resolve"):
        make_settings(catalog={"types": {"backup.run": {"resolve": "5m"}}})


async def test_transitions_go_out_on_the_live_feed_and_into_the_metrics(
    setup: Callable[..., Any], redis: aioredis.Redis
) -> None:
    run: Setup = await setup()
    feed = redis.pubsub()
    await feed.subscribe(run.worker.keys.live("team-1"))
    try:
        await run.publish(failure(run.clock), failure(run.clock))
        await run.publish(at(run.clock, outcome="success", alert={"key": KEY}))
        seen = []
        async with asyncio.timeout(5):
            while len(seen) < 6:  # three durable events mirrored, three transitions
                message = await feed.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    seen.append(json.loads(message["data"])["event"])
    finally:
        await feed.aclose()
    announced = [doc for doc in seen if doc["event"].startswith("eventbus.alert.")]
    assert [doc["event"] for doc in announced] == [
        "eventbus.alert.raised",
        "eventbus.alert.touched",
        "eventbus.alert.resolved",
    ]
    assert announced[0]["resource"] == {"type": "alert", "id": KEY}
    assert announced[2]["metadata"]["count"] == "2"
    registry = run.worker.metrics.registry
    for kind, count in [("raised", 1), ("touched", 1), ("resolved", 1)]:
        value = registry.get_sample_value("eventbus_alert_transitions_total", {"transition": kind})
        assert value == count
    assert await run.worker.alert_timers.open_counts() == {}


async def test_open_alerts_are_counted_by_team_severity_and_status(
    setup: Callable[..., Any],
) -> None:
    run: Setup = await setup()
    await run.publish(failure(run.clock), at(run.clock, outcome="error", alert={"key": "other"}))
    counts = await run.worker.alert_timers.open_counts()
    assert counts == {("team-1", "error", "firing"): 2}
    run.worker.metrics.open_alerts(counts)
    sample = run.worker.metrics.registry.get_sample_value(
        "eventbus_alerts_firing", {"team": "team-1", "severity": "error", "status": "firing"}
    )
    assert sample == 2


def test_alert_transition_types_are_transient_in_the_catalog() -> None:
    catalog = Catalog()
    for name in ALERT_TRANSITION_TYPES.values():
        assert catalog.kind(name) is Kind.TRANSIENT and not catalog.is_subscribable(name)


async def test_a_retried_raise_is_still_the_raise(setup: Callable[..., Any]) -> None:
    run: Setup = await setup()
    run.fake.script.append(SendResult(OutcomeClass.RETRYABLE, status=503, error="busy"))
    await run.publish(failure(run.clock))
    run.clock.offset += 10  # past the first retry (5 s, no jitter)
    await run.worker.drain()
    assert len(run.fake.sent) == 2
    assert run.transitions() == ["raised", "raised"]
    assert run.fake.sent[0].delivery_id == run.fake.sent[1].delivery_id


async def test_expired_alerts_leave_the_index(setup: Callable[..., Any]) -> None:
    run: Setup = await setup()
    await run.publish(failure(run.clock), at(run.clock, outcome="success", alert={"key": KEY}))
    redis, keys = run.worker.redis, run.worker.keys
    assert await redis.zcard(keys.alerts) == 1
    assert await run.worker.alert_timers.prune(run.clock()) == 0, "kept for the retention"
    await redis.delete(keys.alert("team-1", KEY))  # as its expiry does
    run.clock.offset += 7 * 86400 + 1
    assert await run.worker.alert_timers.prune(run.clock()) == 1
    assert await redis.zcard(keys.alerts) == 0
