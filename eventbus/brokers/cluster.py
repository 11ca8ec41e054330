"""The Redis Cluster client behind ``connect()`` for ``redis+cluster://`` URLs.

Why one client type serves both deployments: every eventbus key shares one
hash tag (``{<prefix>}``, see ``eventbus.keys``), so each script, MULTI/EXEC
and pipeline touches one slot and runs on one node; the commands eventbus
sends are the same on both. The rest of the code annotates its client as
``redis.asyncio.Redis``; ``connect()`` hands the ``RedisCluster`` over
through one ``typing.cast`` (the command surface is exercised on a real
cluster by tests/*/test_cluster_*.py). Code that must act on every node
(``SCAN``) asks ``is_cluster`` / ``primaries``.

Cluster specifics, on purpose:

- ``max_connections`` is per node. redis-py's cluster node pool does not
  wait for a free connection: it raises ``MaxConnectionsError``, which the
  client's retry policy retries with backoff, then ``BrokerUnavailable``.
- MOVED/ASK are followed and the slot map refreshed by redis-py; during a
  failover (``ClusterDownError``, ``TryAgainError``, connection errors) the
  client retries ``retries`` times with backoff before the error surfaces,
  translated into ``BrokerUnavailable`` (see ``redis_streams.translate_errors``).
- ``PUBLISH`` is broadcast over the cluster bus to every node, so a Pub/Sub
  subscription on any one node sees every live-mirror message.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ..broker_settings import CLUSTER_SCHEMES, parse_cluster_url
from ..errors import BrokerUnavailable
from .packing import hiredis_connection_class

__all__ = [
    "CLUSTER_UNAVAILABLE",
    "check_replicated",
    "connect_cluster",
    "is_cluster",
    "is_cluster_url",
    "ready",
    "refresh_slots",
    "scan_keys",
    "stream_pubsub",
]

# The cluster is reconfiguring (failover, resharding) or a slot has no
# node: transient, like an unreachable single node.
CLUSTER_UNAVAILABLE: tuple[type[Exception], ...] = (
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.AskError,  # and MovedError: still redirected after the retries
    rexc.ClusterError,
    rexc.SlotNotCoveredError,
)


def check_replicated(acked: Any, wanted: int, timeout: float) -> None:
    """Raise unless ``WAIT`` answered that ``wanted`` replicas have the writes."""
    if isinstance(acked, Exception):
        raise BrokerUnavailable(f"publish: waiting for replicas failed: {acked}")
    if int(acked) < wanted:
        raise BrokerUnavailable(
            f"publish: the events reached the master but only {acked} of "
            f"broker.replica_acks={wanted} replica(s) confirmed them within {timeout}s, "
            "so a failover could lose them; publish them again (the event id keeps "
            "deliveries single), or lower broker.replica_acks if there are fewer replicas"
        )


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0] in CLUSTER_SCHEMES


def is_cluster(redis: aioredis.Redis | RedisCluster) -> bool:
    """Whether ``redis`` (as ``connect()`` returned it) is a cluster client."""
    return isinstance(redis, RedisCluster)


async def ready(redis: aioredis.Redis | RedisCluster) -> None:
    """Before ``pubsub()``: a cluster client learns its slot map on its first command,
    but its Pub/Sub picks a node from that map without asking for it first."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()


async def refresh_slots(redis: aioredis.Redis | RedisCluster) -> None:
    """Relearn the slot map now (after a pipeline met a dead or demoted node).

    redis-py refreshes it when a command or a raising pipeline fails, but a
    pipeline run with ``raise_on_error=False`` (publish_many, which must see
    every reply) leaves the old map, and every later call would go to the
    dead master again.
    """
    if isinstance(redis, RedisCluster):
        with contextlib.suppress(rexc.RedisError, rexc.RedisClusterException, OSError):
            await redis.nodes_manager.initialize()


async def stream_pubsub(redis: aioredis.Redis | RedisCluster, stream: str) -> Any:
    """A Pub/Sub for the live mirror: on a cluster, on the master of ``stream``.

    Durable publishes PUBLISH from that master (inside the publish script),
    so a subscriber there sees them as a single node would: at once and in
    order. Elsewhere they arrive later, over the cluster bus, and a message
    could come after an SSE replay that already read the stream past it.
    """
    if not isinstance(redis, RedisCluster):
        return redis.pubsub()
    await redis.initialize()
    # A (re)subscription often follows a lost connection: the master may have
    # changed, and nothing else may have told this client yet.
    await refresh_slots(redis)
    return redis.pubsub(node=redis.get_node_from_key(stream))


def connect_cluster(
    url: str,
    *,
    retries: int,
    socket_timeout: float | None,
    max_connections: int,
) -> RedisCluster:
    """A ``RedisCluster`` for a ``redis+cluster://`` URL (see ``parse_cluster_url``)."""
    parsed = parse_cluster_url(url)
    client = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.seeds],
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.tls,
        max_connections=max_connections,
        # One attempt plus ``retries`` more; a failover takes the node
        # timeout plus an election, so the backoff reaches a few seconds.
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), max(retries, 1)),
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
    )
    _pack_with_hiredis(client)
    return client


def _pack_with_hiredis(client: RedisCluster) -> None:
    # Nodes found later are built from connection_kwargs; the seed nodes
    # were built in the constructor and get the class directly.
    kwargs: dict[str, Any] = client.connection_kwargs
    fast: Any = hiredis_connection_class(kwargs["connection_class"])
    kwargs["connection_class"] = fast
    for node in client.startup_nodes:
        node.connection_class = fast
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = fast


async def scan_keys(
    redis: aioredis.Redis | RedisCluster, match: str, count: int = 1000
) -> AsyncIterator[bytes]:
    """Every key matching ``match``, on every master of a cluster."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()  # a fresh client knows no primaries yet
        for node in redis.get_primaries():
            cursor = 0
            while True:
                cursor, found = await _scan_node(redis, node, cursor, match, count)
                for key in found:
                    yield key
                if cursor == 0:
                    break
        return
    async for key in redis.scan_iter(match=match, count=count):
        yield key


async def _scan_node(
    redis: RedisCluster, node: ClusterNode, cursor: int, match: str, count: int
) -> tuple[int, list[bytes]]:
    reply: Any = await redis.scan(cursor, match=match, count=count, target_nodes=node)
    # redis-py's cluster SCAN answers ({node name: next cursor}, keys).
    cursors, found = reply
    next_cursor = next(iter(cursors.values())) if isinstance(cursors, dict) else cursors
    return int(next_cursor), list(found)
