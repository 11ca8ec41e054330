"""Shared fixtures: real servers found through settings, unique key prefixes."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from eventbus.settings import Settings

REDIS_URL = os.environ.get("EVENTBUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("EVENTBUS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REQUIRE = bool(os.environ.get("CI") or os.environ.get("EVENTBUS_REQUIRE_SERVERS"))


def _reachable(url: str) -> bool:
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
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"ebtest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis(redis_url: str, prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        keys += [key async for key in client.scan_iter(match=f"{{{prefix}}}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def make_settings(redis_url: str, prefix: str) -> Callable[..., Settings]:
    """Settings on the test Redis and the test's own prefix."""

    def make(**sections: Any) -> Settings:
        broker = {"redis_url": redis_url, "prefix": prefix, **sections.pop("broker", {})}
        return Settings(broker=broker, **sections)

    return make
