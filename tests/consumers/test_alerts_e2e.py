"""Alerts end to end: a worker SIGKILLed after deciding a raise, before its ack.

The victim (``eventbus run`` in a process) decides the first failure of a
key (the alert is raised in Redis), starts sending the raise and is killed
while the request is held. Ten more failures come. The rescuer reclaims the
entry: it gets the raise back (the same delivery, sent again: at least
once), the ten are touches of that alert, and there is one alert, count 11,
one delivered record and ten folded.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml

from consumers.channels.registry import build_channels
from consumers.daemon import make_channel_deps, make_http_client
from consumers.store import AlertStatus, AlertStore, DeliveryStatus, delivery_id
from consumers.worker import Worker
from eventbus.config import load_settings
from eventbus.envelope import Event
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import event
from .processes import start_worker as start_process
from .sink import Sink

pytestmark = pytest.mark.integration

KEY = "backup-failed:h1"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    served = Sink()
    await served.start()
    yield served
    await served.stop()


def write_config(tmp_path: Path, sink: Sink, redis_url: str, prefix: str) -> Path:
    data = {
        "broker": {"redis_url": redis_url, "prefix": prefix},
        "consumer": {"block": "100ms", "retry_poll": "100ms", "delivery_timeout": "30s"},
        "http": {"enabled": False},
        "security": {"allow_private_targets": True},
        "logging": {"format": "json"},
        "channels": [{"name": "hook", "type": "webhook", "url": sink.url}],
        "subscriptions": [
            {"name": "pager", "team": "*", "events": ["backup.*"], "channels": ["hook"]}
        ],
    }
    path = tmp_path / "eventbus.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def start_worker(path: Path, name: str) -> asyncio.subprocess.Process:
    return await start_process(path, name, output=False)


def failure() -> Event:
    return event(event="backup.run", outcome="error", error="disk full", alert={"key": KEY})


def rescuer(settings: Settings, redis: aioredis.Redis, http: Any) -> Worker:
    consumer = settings.consumer.model_copy(update={"name": "rescuer", "claim_idle": 0})
    settings = settings.model_copy(update={"consumer": consumer})
    channels = build_channels(settings, make_channel_deps(settings, http))
    return Worker(settings, redis=redis, channels=channels)


async def test_sigkill_between_the_raise_and_its_ack_raises_once(
    tmp_path: Path, sink: Sink, redis: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    path = write_config(tmp_path, sink, redis_url, prefix)
    settings = load_settings(path)
    first, more = failure(), [failure() for _ in range(10)]
    sink.gate = asyncio.Event()  # the victim's raise is held here
    proc = await start_worker(path, "victim")
    http = make_http_client(settings)
    try:
        async with Publisher(settings, redis=redis) as bus:
            await bus.publish(first)
            await sink.wait_for(1)  # decided and sending: the state says raised
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            sink.gate.set()
            sink.gate = None
            await bus.publish_many(more)
        worker = rescuer(settings, redis, http)
        store = AlertStore(redis, worker.keys)
        raised = await store.get("team-1", KEY)
        assert raised is not None and raised.count == 1, "the victim raised it before dying"
        await worker.start()
        await worker.reclaim_once()
        await worker.drain(include_pending=False)
    finally:
        if proc.returncode is None:
            proc.kill()
        await http.aclose()
    alert = await store.get("team-1", KEY)
    assert alert is not None
    assert (alert.id, alert.status, alert.count) == (raised.id, AlertStatus.FIRING, 11)
    raise_id = delivery_id(first.id, "pager", "hook")
    assert [got.headers["webhook-id"] for got in sink.received] == [raise_id, raise_id], (
        "the raise is the one delivery sent (again after the reclaim); no touch raised"
    )
    ids = [delivery_id(ev.id, "pager", "hook") for ev in [first, *more]]
    records = await worker.store.current(ids)
    statuses = [records[did].status for did in ids if records[did] is not None]  # type: ignore[union-attr]
    assert statuses == [DeliveryStatus.DELIVERED] + [DeliveryStatus.FOLDED] * 10
    assert sorted(await store.events(alert, limit=20)) == sorted(ev.id for ev in [first, *more])
