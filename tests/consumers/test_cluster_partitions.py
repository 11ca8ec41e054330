"""broker.partitions=3 on the real local Redis Cluster (3 masters + 3 replicas).

The single-node partition cases run again here (imported, one definition),
then daemons as operators run them: two over 3 partitions deliver every event
exactly once, and after a SIGKILL every event still arrives, duplicates
sharing their webhook-id. The live mirror sees every partition's messages
(each partition's PUBLISH comes from its own master).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml

from eventbus.brokers import RedisStreams
from eventbus.config import load_settings
from eventbus.keys import Keys, partition_of, split_entry
from eventbus.live import parse_live
from publishers import Publisher

from .fakes import event
from .processes import joined, start_worker
from .sink import Sink
from .test_daemon_process import check_all_delivered, rescue
from .test_partitions_worker import (  # noqa: F401  (fixtures and cases run again here)
    setup,
    test_a_dead_consumers_entries_are_reclaimed_from_every_partition,
    test_a_global_subscription_groups_per_partition,
    test_a_retry_lives_and_is_claimed_in_its_partition,
    test_every_partition_is_read_delivered_once_and_acked_on_its_stream,
    test_gone_from_another_partition_disables_the_channel_globally,
)

pytestmark = pytest.mark.integration

PARTS = 3
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def redis_url(cluster_url: str) -> str:
    return cluster_url


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
def config(tmp_path: Path, sink: Sink, redis_url: str, prefix: str) -> Callable[..., Path]:
    def write(**consumer: Any) -> Path:
        data = {
            "broker": {"redis_url": redis_url, "prefix": prefix, "partitions": PARTS},
            "consumer": {"block": "200ms", "claim_interval": "500ms", **consumer},
            "http": {"enabled": False},
            "security": {"allow_private_targets": True},
            "logging": {"format": "json", "deliveries": "all"},
            "channels": [{"name": "hook", "type": "webhook", "url": sink.url, "secret": SECRET}],
            "subscriptions": [{"name": "all", "team": "*", "events": ["*"], "channels": ["hook"]}],
        }
        path = tmp_path / "eventbus.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


def spread(count: int) -> list[Any]:
    """Events of 20 teams (every partition), in order within each team."""
    return [
        event(team_id=f"team-{n % 20}", resource={"type": "capsule", "id": f"c{n}"})
        for n in range(count)
    ]


async def publish(path: Path, redis: aioredis.Redis, events: list[Any]) -> list[str]:
    async with Publisher(load_settings(path), redis=redis) as bus:
        return await bus.publish_many(events)


async def stop(procs: list[asyncio.subprocess.Process]) -> list[str]:
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    return [(await asyncio.wait_for(proc.communicate(), 30))[0].decode() for proc in procs]


@pytest.mark.slow
async def test_two_daemons_over_three_partitions_deliver_every_event_once(
    config: Callable[..., Path], sink: Sink, redis: aioredis.Redis
) -> None:
    path = config(max_in_flight=16)
    events = spread(300)
    procs = [await start_worker(path, name) for name in ("left", "right")]
    try:
        for keys in Keys(load_settings(path).broker.prefix).partitions(PARTS):  # both take part
            await joined(redis, keys.events, "delivery", {"left", "right"})
        ids = await publish(path, redis, events)
        assert {split_entry(stream_id)[1] for stream_id in ids} == set(range(PARTS))
        await sink.wait_for(len(events), 90)
    finally:
        outputs = await stop(procs)
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out[-2000:]
    sent = [[line for line in out.splitlines() if '"delivery.sent"' in line] for out in outputs]
    assert sum(map(len, sent)) == len(events), "each event sent once, by one of the two"
    assert all(sent), "both workers took part"
    assert len(sink.received) == len(events), "no duplicate without a kill"
    worker = await rescue(path, redis)
    await check_all_delivered(worker, events, sink)


@pytest.mark.slow
async def test_a_sigkilled_daemon_loses_nothing_over_three_partitions(
    config: Callable[..., Path], sink: Sink, redis: aioredis.Redis
) -> None:
    path = config(max_in_flight=16, claim_idle="2s")  # the survivor reclaims the victim's
    events = spread(300)
    await publish(path, redis, events)
    victim = await start_worker(path, "victim")
    survivor = await start_worker(path, "survivor")
    try:
        await sink.wait_for(60, 60)
    finally:
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
    assert victim.returncode == -signal.SIGKILL
    try:
        await sink.wait_for(len(events), 90)  # the survivor goes on (duplicates count)
    finally:
        await stop([survivor])
    worker = await rescue(path, redis)
    await check_all_delivered(worker, events, sink)


async def test_the_live_mirror_sees_every_partitions_master(
    redis: aioredis.Redis, prefix: str
) -> None:
    streams = RedisStreams(redis, Keys(prefix), partitions=PARTS)
    teams = {partition_of(f"team-{n}", PARTS): f"team-{n}" for n in range(30)}
    assert sorted(teams) == list(range(PARTS))
    async with streams.live() as messages:
        published = {
            await streams.publish(team, event(team_id=team).to_json()) for team in teams.values()
        }
        got = set()
        async with asyncio.timeout(10):
            while len(got) < PARTS:
                got.add(parse_live(await anext(messages)).stream_id)
    assert got == published
