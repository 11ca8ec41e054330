"""A master dies mid-load: its replica takes over and nothing acknowledged is lost.

Its own cluster (ports 7311-7316, not the session's: this one loses a node).
A daemon process delivers to a local webhook sink while this test publishes
one event at a time. With a backlog and deliveries held in flight, it
SIGKILLs the master that holds the ``{prefix}`` slot and releases them
(their commits meet the dead master); it keeps publishing through the
failover and, once the dead node is back as a replica, after it. Then every
event ``publish()`` acknowledged has reached the sink (duplicates, from work
redone after the failover, share their ``webhook-id``) with a delivered
record, and every publish that did not return raised a ``BrokerError``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventbus.brokers.cluster import scan_keys, stream_pubsub
from eventbus.brokers.redis_streams import RedisStreams, connect
from eventbus.config import load_settings
from eventbus.errors import BrokerError
from eventbus.keys import Keys
from publishers import Publisher

from ..cluster import ClusterError, LocalCluster
from ..conftest import REQUIRE
from .fakes import event
from .processes import start_worker
from .sink import Sink
from .test_daemon_process import SECRET, check_all_delivered, rescue

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAILOVER_PORT = int(os.environ.get("EVENTBUS_TEST_FAILOVER_PORT", "7311"))
BEFORE, DURING, AFTER = 200, 5, 60  # acknowledged before; attempts during; acknowledged after


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    made = LocalCluster(FAILOVER_PORT)
    try:
        made.start()
    except (ClusterError, OSError) as exc:
        made.stop()
        (pytest.fail if REQUIRE else pytest.skip)(f"the failover cluster did not start: {exc}")
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    made = Sink()
    await made.start()
    yield made
    await made.stop()


def write_config(tmp_path: Path, cluster: LocalCluster, sink: Sink, prefix: str) -> Path:
    data = {
        "broker": {"redis_url": cluster.url, "prefix": prefix, "publish_retries": 2},
        "consumer": {
            "block": "200ms",
            "claim_interval": "500ms",
            "claim_idle": "2s",
            "max_in_flight": 16,
        },
        "http": {"enabled": False},
        "security": {"allow_private_targets": True},
        "logging": {"format": "json"},
        "channels": [{"name": "hook", "type": "webhook", "url": sink.url, "secret": SECRET}],
        "subscriptions": [{"name": "all", "team": "*", "events": ["*"], "channels": ["hook"]}],
    }
    path = tmp_path / "eventbus.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def until_delivered(sink: Sink, ids: set[str], timeout: float) -> None:
    """Wait (on the sink's arrivals, no polling) until every id in ``ids`` arrived."""
    deadline = time.monotonic() + timeout
    while ids - {json.loads(got.body)["id"] for got in sink.received}:
        left = deadline - time.monotonic()
        assert left > 0, "acknowledged events did not all arrive"
        await sink.wait_for(len(sink.received) + 1, left)


async def wait_failed_over(cluster: LocalCluster, key: str, victim: int) -> int:
    def promoted() -> int | None:
        try:
            master = cluster.master_of(key)
        except Exception:  # a node answering mid-election
            return None
        return master if master != victim else None

    loop = asyncio.get_running_loop()
    async with asyncio.timeout(60):
        while (master := await loop.run_in_executor(None, promoted)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # the cluster's own election: nothing to wait on
    await loop.run_in_executor(None, cluster.wait_healthy)
    return master


@pytest.mark.timeout(240)
async def test_killing_the_stream_master_loses_no_acknowledged_event(
    tmp_path: Path, cluster: LocalCluster, sink: Sink, prefix: str
) -> None:
    path = write_config(tmp_path, cluster, sink, prefix)
    settings = load_settings(path)
    assert settings.broker.wait_replicas == 1, "a cluster waits for one replica by default"
    stream = Keys(prefix).events
    victim = cluster.master_of(stream)
    acked: list[Any] = []
    failed: list[BaseException] = []
    proc = await start_worker(path, "survivor")
    redis = connect(cluster.url)
    try:
        async with Publisher(settings) as bus:

            async def attempt() -> None:
                ev = event(resource={"type": "capsule", "id": f"c{len(acked)}-{len(failed)}"})
                try:
                    await bus.publish(ev)
                except Exception as exc:  # checked below: a BrokerError
                    failed.append(exc)
                else:
                    acked.append(ev)

            async def publish_until(count: int) -> None:
                target = len(acked) + count
                while len(acked) < target:
                    await attempt()

            sink.gate = asyncio.Event()  # deliveries held in flight: the kill is mid-load
            await publish_until(BEFORE)
            await sink.wait_for(1, 30)
            cluster.kill_node(victim)
            assert len(sink.received) < len(acked), "a backlog, and deliveries in flight"
            sink.gate.set()  # their commits now meet the dead master
            for _ in range(DURING):  # through the failover: each rides over it or raises
                await attempt()
            master = await wait_failed_over(cluster, stream, victim)
            assert master != victim
            # The promoted master has no replica until the dead node comes back (as
            # one): with replica_acks 1 publishes are refused meanwhile, not unsafe.
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, cluster.restart_node, victim)
            await loop.run_in_executor(None, cluster.wait_healthy)
            await publish_until(AFTER)
        assert failed, "some publishes met the dead master and raised"
        await until_delivered(sink, {ev.id for ev in acked}, 120)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
        except TimeoutError:
            proc.kill()
            out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()[-3000:]
    assert all(isinstance(exc, BrokerError) for exc in failed), failed
    try:
        rescuer = await rescue(path, redis)
        await check_all_delivered(rescuer, acked, sink)
    finally:
        keys = [key async for key in scan_keys(redis, f"{{{prefix}}}*")]
        for key in keys:
            await redis.delete(key)
        await redis.aclose()


async def test_the_live_mirror_follows_the_stream_to_its_new_master(
    cluster: LocalCluster, prefix: str
) -> None:
    keys = Keys(prefix)
    redis = connect(cluster.url)
    streams = RedisStreams(redis, keys)
    try:
        victim = cluster.master_of(keys.events)
        first = await stream_pubsub(redis, keys.events)
        assert first.get_pubsub_node().port == victim, "subscribed where the stream lives"
        await first.aclose()
        cluster.kill_node(victim)
        with pytest.raises(BrokerError):
            await streams.publish_transient("team-1", "{}")
        master = await wait_failed_over(cluster, keys.events, victim)
        # A resubscription (what the SSE mirror does after losing its connection)
        # lands on the promoted master, and transient publishes go from there too.
        again = await stream_pubsub(redis, keys.events)
        try:
            assert again.get_pubsub_node().port == master
            await again.psubscribe(keys.live_pattern)
            confirmed = await again.get_message(timeout=5)
            assert confirmed is not None and confirmed["type"] == "psubscribe"
            assert await streams.publish_transient("team-1", "{}") == 1
            message = await again.get_message(timeout=5)
            assert message is not None and message["type"] == "pmessage"
        finally:
            await again.aclose()
    finally:
        await redis.aclose()
