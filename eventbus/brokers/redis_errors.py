"""redis-py errors translated into the eventbus tree, and reply decoding.

Apart from ``redis_streams`` so that modules it uses (``partitions``) can
translate errors the same way without importing it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis.exceptions as rexc

from ..errors import BrokerError, BrokerUnavailable
from .cluster import CLUSTER_UNAVAILABLE

__all__ = ["UNAVAILABLE", "reply_text", "translate_errors", "translated"]

UNAVAILABLE: tuple[type[Exception], ...] = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    OSError,
    *CLUSTER_UNAVAILABLE,
)


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Map redis-py errors to the eventbus tree, naming the operation."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise BrokerUnavailable(f"{what}: Redis is unreachable ({exc})") from exc
    except (rexc.RedisError, rexc.RedisClusterException) as exc:
        # RedisClusterException is not a RedisError: "cannot be connected" (caused
        # by a connection error) is an outage, a transaction across slots is not.
        if isinstance(exc.__cause__, UNAVAILABLE):
            raise BrokerUnavailable(f"{what}: Redis is unreachable ({exc})") from exc
        raise BrokerError(f"{what}: Redis error: {exc}") from exc


@contextlib.asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    with translate_errors(what):
        yield


def reply_text(value: Any) -> str:
    """A Redis reply value as text (redis-py returns bytes unless decoding is on)."""
    return value.decode() if isinstance(value, bytes) else str(value)
