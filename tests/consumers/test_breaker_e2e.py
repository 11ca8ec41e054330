"""The circuit breaker through the worker, against a local failing webhook sink."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.channels.registry import build_channels
from consumers.daemon import make_channel_deps, make_http_client
from consumers.store import CircuitState
from consumers.store.records import DeliveryStatus, delivery_id
from consumers.worker import Worker
from eventbus.catalog import OPERATOR_CHANNEL_DISABLED
from eventbus.keys import Keys
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import event, subscription
from .sink import Sink

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    down = Sink(default=503)
    await down.start()
    yield down
    await down.stop()


@pytest.fixture
async def run(
    sink: Sink, redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Any]]:
    clients = []

    async def go(clock: Clock, name: str, **breaker: Any) -> tuple[Settings, Worker]:
        s = make_settings(
            consumer={"name": name, "retry_jitter": 0, "retry_schedule": ["5s"] * 20},
            security={"allow_private_targets": True},
            breaker=breaker,
            channels=[{"name": "hook", "type": "webhook", "url": sink.url}],
            subscriptions=[subscription(channels=("hook",))],
        )
        http = make_http_client(s)
        clients.append(http)
        channels = build_channels(s, make_channel_deps(s, http))
        w = Worker(s, redis=redis, channels=channels, clock=clock)
        await w.start()
        return s, w

    yield go
    for client in clients:
        await client.aclose()


def decided(w: Worker, gate: asyncio.Event, count: int) -> list[float | None]:
    """What ``admit`` answers; ``gate`` opens once it answered ``count`` times."""
    breaker, verdicts = w.dispatcher.breaker, []
    admit = breaker.admit

    async def counted(channel: str) -> float | None:
        verdict = await admit(channel)
        verdicts.append(verdict)
        if len(verdicts) == count:
            gate.set()
        return verdict

    breaker.admit = counted  # type: ignore[method-assign]
    return verdicts


async def test_open_holds_back_then_probe_closes(
    run: Callable[..., Any], sink: Sink, redis: aioredis.Redis
) -> None:
    clock = Clock()
    s, w = await run(clock, "w1", consecutive=3, cooldown="1m")
    events = [event() for _ in range(4)]
    async with Publisher(s, redis=redis) as bus:
        await bus.publish_many(events)
    await w.drain()
    assert len(sink.received) == 4
    assert w.dispatcher.breaker.views["hook"].state is CircuitState.OPEN
    assert w.metrics.circuit_state.labels("hook")._value.get() == 2

    clock.now += 6  # the retries are due; the circuit is open
    await w.drain()
    assert len(sink.received) == 4, "held back without an attempt"
    ids = [delivery_id(ev.id, "all", "hook") for ev in events]
    for did in ids:
        record = await w.store.get(did)
        assert record is not None and record.status is DeliveryStatus.RETRYING
        assert record.attempts == 1, "not counted against the retry schedule"
        assert record.reason == "circuit open"
        assert record.next_attempt_at is not None and record.next_attempt_at >= clock.now + 50

    sink.default = 204  # the receiver is back, but holds the probe until all decided
    sink.gate = asyncio.Event()
    verdicts = decided(w, sink.gate, 4)
    clock.now += 70
    await w.drain()
    assert verdicts.count(None) == 1, "one probe; the others held back meanwhile"
    assert len(sink.received) == 5
    assert w.dispatcher.breaker.views["hook"].state is CircuitState.CLOSED
    clock.now += 10
    await w.drain()
    assert len(sink.received) == 8, "the rest goes once the probe closed it"
    for did in ids:
        record = await w.store.get(did)
        assert record is not None and record.status is DeliveryStatus.DELIVERED
        assert record.attempts == 2


async def test_failing_for_the_span_disables_with_the_operator_event(
    run: Callable[..., Any], sink: Sink, redis: aioredis.Redis
) -> None:
    clock = Clock()
    s, w = await run(clock, "w1", consecutive=1, cooldown="10m", disable_after="30m")
    ev = event()
    async with Publisher(s, redis=redis) as bus:
        await bus.publish(ev)
    await w.drain()
    for _ in range(5):  # probes at 10, 30 (disabled) minutes; deliveries meanwhile held
        clock.now += 601
        await w.drain()
    keys = Keys(s.broker.prefix)
    state = json.loads(await redis.hget(keys.channel_state, "hook"))
    assert state["disabled"] is True
    assert "every attempt failed for 30m" in state["reason"] and "503" in state["reason"]
    assert w.dispatcher.channel_states["hook"].disabled
    announced = [
        json.loads(fields[b"payload"])
        for _, fields in await redis.xrange(keys.events)
        if b"channel.disabled" in fields[b"payload"]
    ]
    assert [(a["event"], a["resource"]["id"]) for a in announced] == [
        (OPERATOR_CHANNEL_DISABLED, "hook")
    ]
    assert announced[0]["error"] == state["reason"]
    record = await w.store.get(delivery_id(ev.id, "all", "hook"))
    assert record is not None and record.status is DeliveryStatus.SKIPPED
