"""Shared fixtures: real servers found through settings, unique key prefixes."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis as sync_redis
import redis.asyncio as aioredis

from eventbus.brokers.cluster import is_cluster_url, ready, scan_keys
from eventbus.brokers.redis_streams import connect
from eventbus.settings import Settings

from .cluster import ClusterError, LocalCluster

REDIS_URL = os.environ.get("EVENTBUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("EVENTBUS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REQUIRE = bool(os.environ.get("CI") or os.environ.get("EVENTBUS_REQUIRE_SERVERS"))


def _reachable(url: str) -> bool:
    if is_cluster_url(url):  # EVENTBUS_TEST_REDIS_URL may name a cluster: its first seed
        url = "redis://" + url.partition("://")[2].rpartition("@")[2].split(",")[0]
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 2):
            return True
    except OSError:
        return False


def _need(url: str, what: str) -> None:
    if _reachable(url):
        return
    message = f"{what} is not reachable at {url} (set EVENTBUS_TEST_* to point elsewhere)"
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def redis_url() -> str:
    _need(REDIS_URL, "Redis")
    return REDIS_URL


@pytest.fixture
def amqp_url() -> str:
    _need(AMQP_URL, "RabbitMQ")
    return AMQP_URL


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix no other test uses; its keys on the local Redis go afterwards.

    The ``redis`` fixture cleans up too; this catches the tests that let a
    subprocess or a server write under the prefix without taking ``redis``.
    """
    name = f"ebtest-{uuid.uuid4().hex[:12]}"
    yield name
    if is_cluster_url(REDIS_URL) or not _reachable(REDIS_URL):
        return
    with sync_redis.Redis.from_url(REDIS_URL) as client:
        for pattern in (f"{name}*", f"{{{name}}}*", f"{{{name}#*"):
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)


@pytest.fixture
async def redis(redis_url: str, prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url) if is_cluster_url(redis_url) else aioredis.Redis.from_url(redis_url)
    await ready(client)  # a test may subscribe before any other command
    try:
        yield client
    finally:
        keys = [key async for key in scan_keys(client, f"{prefix}*")]
        keys += [key async for key in scan_keys(client, f"{{{prefix}}}*")]
        keys += [key async for key in scan_keys(client, f"{{{prefix}#*")]  # partitions
        for key in keys:  # one by one: untagged legacy keys live in several slots
            await client.delete(key)
        await client.aclose()


@pytest.fixture
def make_settings(redis_url: str, prefix: str) -> Callable[..., Settings]:
    """Settings on the test Redis and the test's own prefix."""

    def make(**sections: Any) -> Settings:
        broker = {"redis_url": redis_url, "prefix": prefix, **sections.pop("broker", {})}
        return Settings(broker=broker, **sections)

    return make


CLUSTER_PORT = int(os.environ.get("EVENTBUS_TEST_CLUSTER_PORT", "7301"))


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A real 3-master, 3-replica Redis Cluster on loopback (ports 7301-7306), per session."""
    cluster = LocalCluster(CLUSTER_PORT)
    try:
        cluster.start()
    except (ClusterError, OSError) as exc:
        cluster.stop()
        if REQUIRE:
            pytest.fail(f"the local Redis Cluster did not start: {exc}")
        pytest.skip(f"the local Redis Cluster did not start: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster: LocalCluster) -> str:
    redis_cluster.wait_healthy()  # a failover case may have just restarted a node
    return redis_cluster.url
