"""One channel named by two subscriptions receives each event once (real Redis, real webhook)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from consumers.channels.registry import build_channels
from consumers.daemon import make_channel_deps, make_http_client
from consumers.metrics import Metrics
from consumers.store.records import DeliveryStatus, delivery_id
from consumers.worker import Worker
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import event, subscription
from .sink import Sink

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EVENTS = 20


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    receiver = Sink()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_each_event_reaches_a_shared_channel_once(
    sink: Sink, redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        consumer={"name": "merge-e2e", "retry_jitter": 0},
        security={"allow_private_targets": True},
        channels=[
            {"name": "hook", "type": "webhook", "url": sink.url, "secret": SECRET},
            {"name": "log", "type": "console"},
        ],
        subscriptions=[
            subscription("errors", ("hook",), outcomes=["error"]),
            subscription("everything", ("hook", "log")),
            subscription("hosts", ("hook",), where={"resource.type": "host"}),
        ],
    )
    errors = [event(outcome="error", error="boom") for _ in range(EVENTS // 2)]
    others = [event() for _ in range(EVENTS // 2)]
    async with Publisher(settings, redis=redis) as bus:
        await bus.publish_many([*errors, *others])
    metrics = Metrics()
    async with make_http_client(settings) as http:
        worker = Worker(
            settings,
            redis=redis,
            channels=build_channels(settings, make_channel_deps(settings, http)),
            metrics=metrics,
        )
        await worker.start()
        assert await worker.drain() == EVENTS

    received = [json.loads(got.body)["id"] for got in sink.received]
    assert sorted(received) == sorted(ev.id for ev in [*errors, *others]), "each event once"
    hook_ids = {got.headers["webhook-id"] for got in sink.received}
    # errors deliver through "errors" (first in file order), the rest through "everything"
    assert hook_ids == {delivery_id(ev.id, "errors", "hook") for ev in errors} | {
        delivery_id(ev.id, "everything", "hook") for ev in others
    }
    for ev in errors:
        merged = await worker.store.get(delivery_id(ev.id, "everything", "hook"))
        assert merged is not None and merged.status is DeliveryStatus.MERGED
        assert merged.refers_to == delivery_id(ev.id, "errors", "hook")
        logged = await worker.store.get(delivery_id(ev.id, "everything", "log"))
        assert logged is not None and logged.status is DeliveryStatus.DELIVERED
    for ev in others:
        assert await worker.store.get(delivery_id(ev.id, "everything", "hook")) is not None
        assert await worker.store.get(delivery_id(ev.id, "errors", "hook")) is None
    # "hosts" never matched (capsule events): filtered out, no record, counted
    assert await worker.store.get(delivery_id(errors[0].id, "hosts", "hook")) is None
    filtered = metrics.registry.get_sample_value(
        "eventbus_events_filtered_total", {"subscription": "hosts", "reason": "where"}
    )
    assert filtered == EVENTS
    routed = metrics.registry.get_sample_value(
        "eventbus_deliveries_routed_total", {"subscription": "everything", "state": "merged"}
    )
    assert routed == len(errors)
    merged_rows = await worker.store.query(status="merged", limit=100)
    assert len(merged_rows) == len(errors)
