"""connect(): a bounded pool that waits for a free connection instead of failing."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from eventbus.brokers.redis_streams import connect

pytestmark = pytest.mark.integration


async def test_busy_pool_waits_for_a_connection(redis_url: str, prefix: str) -> None:
    client = connect(redis_url, max_connections=2, pool_timeout=10)
    try:
        start = time.perf_counter()
        # Each BLPOP holds its connection for 0.3 s; the third must wait for one.
        results = await asyncio.gather(
            *(client.blpop([f"{prefix}:nothing:{i}"], timeout=0.3) for i in range(3))
        )
        elapsed = time.perf_counter() - start
        assert results == [None, None, None]
        assert elapsed >= 0.6, "the third command ran after one of the first two"
        assert isinstance(client.connection_pool, aioredis.BlockingConnectionPool)
        assert client.connection_pool.max_connections == 2
    finally:
        await client.aclose()


async def test_pool_timeout_is_an_error(redis_url: str) -> None:
    client = connect(redis_url, max_connections=1, pool_timeout=0.1)
    pool = client.connection_pool
    try:
        held = await pool.get_connection()  # the only one
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await client.ping()
        await pool.release(held)
        assert await client.ping() is True, "usable again once one is free"
    finally:
        await client.aclose()
