"""Keep a worker's copy of shared state current: a Pub/Sub notice, a version poll.

Silences and console-defined channels and subscriptions live in Redis with
a version counter raised on every change and a Pub/Sub notice sent with it.
A ``Follower`` subscribes first and loads second (a change in between is not
missed), reloads on each notice, and every ``refresh`` seconds compares the
stored version with the one it holds: Pub/Sub drops notices sent while the
connection is down, and one GET a second is cheap. Redis errors are retried
here with backoff; the copy held meanwhile stays in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import redis.asyncio as aioredis
import structlog

from eventbus.brokers.cluster import ready
from eventbus.brokers.redis_streams import translated

__all__ = ["Follower"]

log = structlog.get_logger("eventbus.worker")

_TICK: Final = 1.0  # the stop flag is looked at least this often
_CONFIRM_TIMEOUT: Final = 5.0
_BACKOFF_START: Final = 0.1
_BACKOFF_CAP: Final = 10.0


class Follower:
    """Runs ``load`` whenever the state under ``notices`` may have changed."""

    def __init__(
        self,
        redis: aioredis.Redis,
        notices: str,
        *,
        what: str,
        load: Callable[[], Awaitable[None]],
        stored_version: Callable[[], Awaitable[int]],
        held_version: Callable[[], int | None],
        refresh: float,
    ) -> None:
        self.redis = redis
        self.notices = notices
        self.what = what  # "silences", "console": log names and error contexts
        self.load = load
        self.stored_version = stored_version
        self.held_version = held_version
        self.refresh = refresh
        self._delay = _BACKOFF_START

    async def watch(self, stopping: asyncio.Event, beat: Callable[[], None] | None = None) -> None:
        """Follow until ``stopping`` is set; ``beat`` is called while alive, Redis down too."""
        while not stopping.is_set():
            if beat is not None:  # alive while Redis is down too: an outage is not a hang
                beat()
            try:
                await self._follow(stopping, beat)
            except Exception as exc:  # Redis errors (translated or not) and anything else
                log.warning(f"{self.what}.watch_failed", error=str(exc), retry_in_s=self._delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self._delay)
                self._delay = min(self._delay * 2, _BACKOFF_CAP)

    async def _follow(self, stopping: asyncio.Event, beat: Callable[[], None] | None) -> None:
        async with translated(f"subscribe to the {self.what} notices"):
            await ready(self.redis)  # a cluster client's Pub/Sub needs its slot map
        pubsub: Any = self.redis.pubsub()
        try:
            async with translated(f"subscribe to the {self.what} notices"):
                await pubsub.subscribe(self.notices)
                await _confirmed(pubsub)
            await self.load()  # subscribed first, then loaded: nothing falls in between
            self._delay = _BACKOFF_START
            # The stop flag as well as cancellation: redis-py with hiredis can
            # swallow a cancel that lands while a reply is parsed.
            polled = time.monotonic()
            while not stopping.is_set():
                if beat is not None:
                    beat()
                async with translated(f"wait for {self.what} notices"):
                    notice = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=min(self.refresh, _TICK)
                    )
                if notice is None and time.monotonic() - polled < self.refresh:
                    continue
                polled = time.monotonic()
                if notice is not None or await self.stored_version() != self.held_version():
                    await self.load()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()


async def _confirmed(pubsub: Any) -> None:
    """Wait for Redis to confirm the subscription (notices before that would be missed)."""
    async with asyncio.timeout(_CONFIRM_TIMEOUT):
        while True:
            reply = await pubsub.get_message(timeout=_CONFIRM_TIMEOUT)
            if reply is not None and reply["type"] == "subscribe":
                return
