"""The live mirror from a broker's own live feed (RabbitMQ mode) instead of Pub/Sub.

``BrokerLiveHub`` is the ``LiveHub`` with another source: the broker's
``live()`` (on RabbitMQ an exclusive auto-delete queue bound to
``<prefix>.live``, one per process), fanned out to the SSE subscribers the
same way. Nothing is replayed in this mode (``replays = False``): the
broker keeps no history of the live feed, and the SSE endpoint says so to a
client that sends ``Last-Event-ID`` (``consumers.server.sse``).

Whenever the broker connection drops, every subscriber is ended (messages
may have been missed) and the feed is opened again once it is back;
``/readyz`` reports the broker unreachable meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import redis.asyncio as aioredis

from eventbus.errors import BrokerUnavailable
from eventbus.keys import Keys

from .live import LiveHub

__all__ = ["BrokerLiveHub", "LiveSource"]


class LiveSource(Protocol):
    """What the hub needs of a broker (``eventbus.brokers.rabbitmq.RabbitMQ`` has it)."""

    url_redacted: str

    @property
    def reachable(self) -> bool: ...

    def live(self) -> AbstractAsyncContextManager[AsyncIterator[bytes]]: ...


class BrokerLiveHub(LiveHub):
    """A ``LiveHub`` reading ``source.live()``; ``redis`` and ``keys`` serve the rest."""

    replays = False

    def __init__(self, source: LiveSource, redis: aioredis.Redis, keys: Keys, **options: Any):
        super().__init__(redis, keys, **options)
        self.source = source
        self._reading: AbstractAsyncContextManager[AsyncIterator[bytes]] | None = None
        self._messages: AsyncIterator[bytes] | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set() and self.source.reachable

    def not_ready(self) -> str | None:
        if not self.source.reachable:
            return f"the broker is unreachable at {self.source.url_redacted} (reconnecting)"
        return super().not_ready()

    async def _open(self) -> None:
        reading = self.source.live()
        self._messages = await reading.__aenter__()
        self._reading = self._pubsub = reading
        self._connected.set()

    async def _close_pubsub(self) -> None:
        reading, self._reading, self._pubsub = self._reading, None, None
        self._messages = None
        self._connected.clear()
        if reading is not None:
            with contextlib.suppress(Exception):
                await reading.__aexit__(None, None, None)

    async def _pump(self, subscription: Any) -> None:
        messages = self._messages
        if messages is None:
            raise BrokerUnavailable("live mirror: not subscribed")
        reader = asyncio.ensure_future(self._read_all(messages))
        try:
            while not self._stopping.is_set():
                self._beat()
                if not self.source.reachable:  # what is published meanwhile is missed
                    raise BrokerUnavailable("live mirror: the broker connection was lost")
                done, _ = await asyncio.wait({reader}, timeout=1.0)
                if done:
                    reader.result()
                    raise BrokerUnavailable("live mirror: the feed ended")
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _read_all(self, messages: AsyncIterator[bytes]) -> None:
        async for raw in messages:
            self.dispatch(raw)
