"""The Redis client eventbus uses: a bounded pool, retries, hiredis packing.

A ``redis+cluster://`` URL gives a cluster client (``brokers.cluster``).
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from .cluster import connect_cluster, is_cluster_url
from .packing import hiredis_connection_class

__all__ = ["connect"]


def connect(
    url: str,
    *,
    retries: int = 3,
    socket_timeout: float | None = 5.0,
    max_connections: int = 64,
    pool_timeout: float = 20.0,
) -> aioredis.Redis:
    """An asyncio Redis client that retries transient connection errors.

    At most ``max_connections`` connections are open; a command that finds
    them all busy waits up to ``pool_timeout`` seconds for one (redis-py's
    default pool fails at once instead). Its connections pack commands with
    hiredis (see ``packing``).

    A ``redis+cluster://`` URL (see ``BrokerSettings.cluster``) gives a
    ``redis.asyncio.RedisCluster`` typed as ``Redis``: the commands eventbus
    sends work on both (one hash tag per prefix; see ``brokers.cluster``),
    which the cluster tests check on a real cluster. ``max_connections`` is
    then per node, and a busy node is retried rather than waited for.
    """
    if is_cluster_url(url):
        client = connect_cluster(
            url, retries=retries, socket_timeout=socket_timeout, max_connections=max_connections
        )
        return cast(aioredis.Redis, client)
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries),
        retry_on_error=[rexc.ConnectionError, rexc.TimeoutError],
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
    )
    # from_url picks the class from the URL scheme (the URL wins over a
    # connection_class argument); the pool has no connections yet.
    pool.connection_class = hiredis_connection_class(pool.connection_class)
    return aioredis.Redis.from_pool(pool)
