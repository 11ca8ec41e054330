"""Publish -> worker -> real webhook channel -> local sink, on the real Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from standardwebhooks.webhooks import Webhook

from consumers.channels.registry import build_channels
from consumers.daemon import make_channel_deps, make_http_client
from consumers.store.records import DeliveryStatus, delivery_id
from consumers.worker import Worker
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import event, subscription
from .sink import Sink

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def run(
    sink: Sink, redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Any]]:
    clients = []

    async def go(**consumer: Any) -> tuple[Settings, Worker]:
        s = make_settings(
            consumer={"name": "e2e", "retry_jitter": 0, **consumer},
            security={"allow_private_targets": True},
            channels=[{"name": "hook", "type": "webhook", "url": sink.url, "secret": SECRET}],
            subscriptions=[subscription(channels=("hook",))],
        )
        http = make_http_client(s)
        clients.append(http)
        channels = build_channels(s, make_channel_deps(s, http))
        w = Worker(s, redis=redis, channels=channels)
        await w.start()
        return s, w

    yield go
    for client in clients:
        await client.aclose()


async def publish(s: Settings, redis: aioredis.Redis, *events: Any) -> None:
    async with Publisher(s, redis=redis) as bus:
        await bus.publish_many(list(events))


async def test_delivered_with_verifiable_signature(
    run: Callable[..., Any], sink: Sink, redis: aioredis.Redis
) -> None:
    s, w = await run()
    ev = event()
    await publish(s, redis, ev)
    await w.drain()

    (got,) = sink.received
    payload = Webhook(SECRET).verify(got.body, got.headers)
    assert payload["id"] == ev.id
    assert got.headers["webhook-id"] == delivery_id(ev.id, "all", "hook")
    assert got.headers["Content-Type"] == "application/json"
    record = await w.store.get(delivery_id(ev.id, "all", "hook"))
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert record.history[0].status == 204


async def test_500_then_200_is_retried_and_delivered(
    run: Callable[..., Any], sink: Sink, redis: aioredis.Redis
) -> None:
    sink.script.extend([500])
    s, w = await run(retry_schedule=["0s"])
    ev = event()
    await publish(s, redis, ev)
    await w.drain()  # attempt 1 (500) schedules a retry due now, which drain takes too

    record = await w.store.get(delivery_id(ev.id, "all", "hook"))
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert [(a.number, a.status) for a in record.history] == [(1, 500), (2, 204)]
    ids = {r.headers["webhook-id"] for r in sink.received}
    assert len(sink.received) == 2 and len(ids) == 1, "same webhook-id on the retry"
    assert record.history[0].response == "sink says hi"


async def test_400_fails_without_retry(
    run: Callable[..., Any], sink: Sink, redis: aioredis.Redis
) -> None:
    sink.default = 400
    s, w = await run()
    ev = event()
    await publish(s, redis, ev)
    await w.drain()
    record = await w.store.get(delivery_id(ev.id, "all", "hook"))
    assert record is not None and record.status is DeliveryStatus.FAILED
    assert len(sink.received) == 1
    assert await w.retries.next_due() is None


async def test_410_disables_the_channel(
    run: Callable[..., Any], sink: Sink, redis: aioredis.Redis
) -> None:
    sink.default = 410
    s, w = await run()
    first, second = event(), event()
    await publish(s, redis, first)
    await w.drain()
    await publish(s, redis, second)
    await w.drain()
    assert len(sink.received) == 1
    states = await w.store.channel_states()
    assert states["hook"].disabled and "410" in (states["hook"].reason or "")
    skipped = await w.store.get(delivery_id(second.id, "all", "hook"))
    assert skipped is not None and skipped.status is DeliveryStatus.SKIPPED
    as_json = json.dumps(skipped.to_dict())
    assert SECRET not in as_json
