"""Digests end to end: real Redis, real webhook channel, a local sink, killed workers.

- two workers share a burst of 100 ``host.down`` events: one digest per
  group, every event recorded ``grouped`` naming the digest that carried it;
- a worker SIGKILLed after grouping (before the flush), or in the middle of
  sending the digest, loses nothing: another worker sends the digest;
- the digest's body has the documented shape and a valid Standard Webhooks
  signature.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml

from consumers.channels.registry import build_channels
from consumers.daemon import make_channel_deps, make_http_client
from consumers.routing.grouping import group_id
from consumers.store.records import DeliveryStatus, delivery_id
from consumers.worker import Worker
from eventbus.config import load_settings
from eventbus.envelope import Event
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import event
from .processes import start_worker as start_process
from .sink import Received, Sink

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Clock:
    """The real time plus an offset a test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
def config(tmp_path: Path, sink: Sink, redis_url: str, prefix: str) -> Callable[..., Path]:
    def write(routing: dict[str, Any], **consumer: Any) -> Path:
        data = {
            "broker": {"redis_url": redis_url, "prefix": prefix},
            "consumer": {
                "block": "100ms",
                "retry_poll": "100ms",
                "claim_interval": "500ms",
                "delivery_timeout": "2s",
                **consumer,
            },
            "http": {"enabled": False},
            "security": {"allow_private_targets": True},
            "logging": {"format": "json"},
            "channels": [{"name": "hook", "type": "webhook", "url": sink.url, "secret": SECRET}],
            "subscriptions": [
                {"name": "pager", "team": "*", "events": ["host.*"], "channels": ["hook"]}
                | {"group_by": ["team", "event"], **routing}
            ],
        }
        path = tmp_path / "eventbus.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


async def start_worker(path: Path, name: str) -> asyncio.subprocess.Process:
    return await start_process(path, name, output=False)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Wait for a condition on the store (checked every 50 ms) within ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


def host_down(number: int, team: str = "team-1") -> Event:
    return event(
        event="host.down",
        outcome="error",
        team_id=team,
        resource={"type": "host", "id": f"h{number}"},
    )


def verified(got: Received) -> dict[str, Any]:
    """The digest document, once its Standard Webhooks signature checks out."""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    headers = {name.lower(): value for name, value in got.headers.items()}
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + got.body, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    assert headers["content-type"] == "application/json"
    doc: dict[str, Any] = json.loads(got.body)
    assert list(doc) == ["type", "group", "count", "events", "truncated"]
    assert doc["type"] == "eventbus.digest"
    assert doc["count"] == len(doc["events"]) + doc["truncated"]
    return doc


def worker(settings: Settings, redis: aioredis.Redis, http: Any, clock: Clock, name: str) -> Worker:
    consumer = settings.consumer.model_copy(update={"name": name, "claim_idle": 0})
    settings = settings.model_copy(update={"consumer": consumer})
    channels = build_channels(settings, make_channel_deps(settings, http))
    return Worker(settings, redis=redis, channels=channels, clock=clock)


async def check_grouped(w: Worker, events: list[Event], digests: dict[str, dict[str, Any]]) -> None:
    """Every event is in exactly one digest, and its record names that digest."""
    carried = {item["id"]: did for did, doc in digests.items() for item in doc["events"]}
    assert sum(len(doc["events"]) for doc in digests.values()) == len(carried), "no event twice"
    assert set(carried) == {ev.id for ev in events}, "no event lost"
    for ev in events:
        record = await w.store.get(delivery_id(ev.id, "pager", "hook"))
        assert record is not None and record.status is DeliveryStatus.GROUPED, ev.id
        assert record.refers_to == carried[ev.id]
    for did in digests:
        record = await w.store.get(did)
        assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert await w.redis.zcard(w.keys.groups) == 0, "no digest left waiting"


async def test_two_workers_send_one_digest_per_group(
    config: Callable[..., Path], sink: Sink, redis: aioredis.Redis
) -> None:
    settings = load_settings(config({"group_wait": "1s", "group_interval": "1h"}))
    clock, http = Clock(), make_http_client(settings)
    workers = [worker(settings, redis, http, clock, name) for name in ("a", "b")]
    teams = [f"team-{n}" for n in range(4)]
    events = [host_down(n, teams[n % 4]) for n in range(100)]
    runs: list[asyncio.Task[None]] = []
    try:
        for w in workers:
            await w.start()
        runs = [asyncio.create_task(w.run()) for w in workers]
        async with Publisher(settings, redis=redis) as bus:
            for first in range(0, 100, 10):  # 100 events over about 2 seconds
                await bus.publish_many(events[first : first + 10])
                await asyncio.sleep(0.2)
        await sink.wait_for(4)
        await until(lambda: _all_read(workers[0]))

        by_group = {}
        for got in sink.received:
            doc = verified(got)
            by_group.setdefault(doc["group"]["team"], []).append(got.headers["webhook-id"])
        assert sorted(by_group) == teams and all(len(ids) == 1 for ids in by_group.values())

        clock.offset += 3600  # group_interval: the events that came later go too
        await until(lambda: _carried(sink, 100))
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*runs)
        await http.aclose()
    ids = [got.headers["webhook-id"] for got in sink.received]
    assert len(ids) == len(set(ids)), "no digest was sent twice"
    digests = {got.headers["webhook-id"]: verified(got) for got in sink.received}
    await check_grouped(workers[0], events, digests)
    sample = next(iter(digests.values()))
    assert sample["group"]["event"] == "host.down" and sample["truncated"] == 0


async def _all_read(w: Worker) -> bool:
    groups = await w.redis.xinfo_groups(w.keys.events)
    return all(group["lag"] == 0 and group["pending"] == 0 for group in groups)


async def _carried(sink: Sink, count: int) -> bool:
    return sum(len(json.loads(got.body)["events"]) for got in sink.received) >= count


async def test_sigkill_after_grouping_another_worker_sends_the_digest(
    config: Callable[..., Path], sink: Sink, redis: aioredis.Redis
) -> None:
    path = config({"group_wait": "30s"})
    settings = load_settings(path)
    events = [host_down(n) for n in range(50)]
    proc = await start_worker(path, "victim")
    clock, http = Clock(), make_http_client(settings)
    try:
        async with Publisher(settings, redis=redis) as bus:
            await bus.publish_many(events)
        rescuer = worker(settings, redis, http, clock, "rescuer")
        await until(lambda: _all_grouped(rescuer, events))
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert sink.received == [], "killed before its group was due"

        clock.offset += 30
        await rescuer.start()
        await rescuer.reclaim_once()
        await rescuer.drain(include_pending=False)
    finally:
        if proc.returncode is None:
            proc.kill()
        await http.aclose()
    [got] = sink.received
    doc = verified(got)
    assert doc["group"] == {"team": "team-1", "event": "host.down"} and doc["count"] == 50
    await check_grouped(rescuer, events, {got.headers["webhook-id"]: doc})


async def _all_grouped(w: Worker, events: list[Event]) -> bool:
    found = await w.store.current([delivery_id(ev.id, "pager", "hook") for ev in events])
    grouped = [r for r in found.values() if r is not None and r.status is DeliveryStatus.GROUPED]
    return len(grouped) == len(events)


async def test_sigkill_while_sending_a_digest_another_worker_sends_it_again(
    config: Callable[..., Path], sink: Sink, redis: aioredis.Redis
) -> None:
    path = config({"group_wait": "1s"})
    settings = load_settings(path)
    events = [host_down(n) for n in range(20)]
    sink.gate = asyncio.Event()  # the victim's digest request is held here
    proc = await start_worker(path, "victim")
    clock, http = Clock(), make_http_client(settings)
    try:
        async with Publisher(settings, redis=redis) as bus:
            await bus.publish_many(events)
        await sink.wait_for(1)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        sink.gate.set()
        sink.gate = None

        rescuer = worker(settings, redis, http, clock, "rescuer")
        clock.offset += 2 * 2 + 30 + 1  # the victim's lease on the digest ran out
        await rescuer.start()
        await rescuer.drain(include_pending=False)
    finally:
        if proc.returncode is None:
            proc.kill()
        await http.aclose()
    first, again = sink.received
    assert first.headers["webhook-id"] == again.headers["webhook-id"], "the same digest"
    assert verified(first)["events"] == verified(again)["events"]
    doc = verified(again)
    assert doc["count"] == 20
    await check_grouped(rescuer, events, {again.headers["webhook-id"]: doc})
    gid = group_id("pager", "hook", ["team-1", "host.down"])
    assert await redis.hget(rescuer.keys.group(gid), "flushing") is None
