"""The live mirror, fanned out: one Pub/Sub subscription per process.

``LiveHub`` subscribes to the pattern ``<prefix>:live:*`` once, parses each
message once (``eventbus.live.parse_live``) and offers it to every connected
``Subscriber`` whose ``LiveFilter`` matches, through a buffer bounded by
``http.client_buffer``. A subscriber whose buffer is full is dropped and
counted in ``eventbus_sse_dropped``: memory never grows with a slow client.

Whenever the subscription is lost, or redis-py silently re-established it,
every subscriber is ended, since messages may have been missed in between;
SSE clients reconnect and resume from their last event id (``sse.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aioredis
import redis.exceptions as rexc
import structlog

from consumers.health import Health
from consumers.metrics import Metrics
from eventbus.brokers.cluster import stream_pubsub
from eventbus.brokers.redis_streams import translated
from eventbus.envelope import Event
from eventbus.errors import BrokerUnavailable, EnvelopeError, EventBusError
from eventbus.keys import Keys
from eventbus.live import LiveMessage, parse_live

__all__ = [
    "MIRROR_LOST",
    "OUTCOMES",
    "OVERFLOW",
    "STOPPING",
    "LiveFilter",
    "LiveHub",
    "Subscriber",
    "parse_types",
]

log = structlog.get_logger(__name__)

OUTCOMES: Final = frozenset({"success", "error", "none"})
# Why a subscriber ended (``Subscriber.end_reason``):
OVERFLOW: Final = "overflow"
STOPPING: Final = "server stopping"
MIRROR_LOST: Final = "live mirror interrupted"

_HUB_LOOP = "sse-hub"


@dataclass(frozen=True, slots=True)
class LiveFilter:
    """Which events a client sees. ``teams=None`` means every team (admin)."""

    teams: frozenset[str] | None = None
    types: tuple[str, ...] = ()  # shell-style globs over the dotted type
    outcomes: frozenset[str] | None = None  # success / error / none
    _type_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = "|".join(f"(?:{fnmatch.translate(t)})" for t in self.types)
        object.__setattr__(self, "_type_re", re.compile(pattern) if pattern else None)

    def matches(self, event: Event) -> bool:
        if self.teams is not None and event.team_id not in self.teams:
            return False
        if self.outcomes is not None and event.outcome_name not in self.outcomes:
            return False
        return self._type_re is None or self._type_re.match(event.event) is not None


class Subscriber:
    """One client's bounded buffer of live messages."""

    def __init__(self, live_filter: LiveFilter, limit: int, name: str = "") -> None:
        self.filter = live_filter
        self.limit = limit
        self.name = name  # the token's name, for logs
        self.high_water = 0  # the most messages ever buffered at once
        self.end_reason: str | None = None
        self._items: deque[LiveMessage] = deque()
        self._wakeup = asyncio.Event()
        self._ended = asyncio.Event()

    def offer(self, message: LiveMessage) -> bool:
        """Buffer ``message``; ``False`` when the buffer is full."""
        if len(self._items) >= self.limit:
            return False
        self._items.append(message)
        self.high_water = max(self.high_water, len(self._items))
        self._wakeup.set()
        return True

    def end(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self._items.clear()
            self._ended.set()
            self._wakeup.set()

    async def get(self) -> LiveMessage | None:
        """The next message, or ``None`` once the subscriber has ended."""
        while True:
            if self.end_reason is not None:
                return None
            if self._items:
                return self._items.popleft()
            self._wakeup.clear()
            await self._wakeup.wait()

    async def wait_ended(self) -> None:
        await self._ended.wait()


class LiveHub:
    """The process's one Pub/Sub subscription, fanned out to subscribers.

    ``start()`` subscribes and returns once Redis confirmed it (raising
    ``BrokerUnavailable`` if it cannot); a background task then reads, and
    resubscribes with backoff after a failure. Whenever the subscription is
    lost or silently re-established, every subscriber is ended, since live
    messages may have been missed: clients resume with their last event id.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        buffer: int = 1000,
        metrics: Metrics | None = None,
        health: Health | None = None,
        confirm_timeout: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.buffer = buffer
        self.metrics = metrics
        self.health = health
        self.confirm_timeout = confirm_timeout
        self.max_backoff = max_backoff
        self.invalid_messages = 0
        self._subs: set[Subscriber] = set()
        self._pubsub: Any = None  # redis.asyncio.client.PubSub (untyped upstream)
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()

    # Whether ``Last-Event-ID`` can be replayed (from the Redis stream; not in RabbitMQ mode).
    replays = True
    # broker.partitions: SSE ids are cursors over the partitions when > 1 (server.sse_partitions).
    partitions = 1

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def not_ready(self) -> str | None:
        """Why the live mirror cannot serve now (for ``/readyz``), or ``None``."""
        return None if self.connected else "the live mirror is not subscribed yet"

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        return tuple(self._subs)

    async def wait_connected(self) -> None:
        """Wait until the subscription is (re-)established (callers bound the wait)."""
        await self._connected.wait()

    async def start(self) -> None:
        if self._task is not None or self._stopping.is_set():
            raise EventBusError("LiveHub.start() may be called once; create a new hub")
        await self._open()
        self._task = asyncio.create_task(self._run(), name=_HUB_LOOP)

    async def stop(self) -> None:
        """End every subscriber and unsubscribe. Safe to call more than once."""
        self._stopping.set()
        self._connected.clear()
        self._end_all(STOPPING)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_pubsub()
        if self.health is not None:
            self.health.forget(_HUB_LOOP)

    def subscribe(self, live_filter: LiveFilter, name: str = "") -> Subscriber:
        """Register a client; ``BrokerUnavailable`` while the mirror is down."""
        if not self.connected:
            raise BrokerUnavailable("the live mirror is not subscribed (Redis unreachable?)")
        sub = Subscriber(live_filter, self.buffer, name)
        self._subs.add(sub)
        if self.metrics is not None:
            self.metrics.sse_clients.inc()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            if self.metrics is not None:
                self.metrics.sse_clients.dec()

    def close_streams(self, reason: str) -> None:
        """End every client's stream (they reconnect and resume), e.g. after tokens changed."""
        self._end_all(reason)

    def dispatch(self, raw: bytes | str) -> None:
        """Offer one raw mirror message to every matching subscriber."""
        try:
            message = parse_live(raw)
        except EnvelopeError as exc:
            self.invalid_messages += 1
            log.warning("sse.invalid_message", error=str(exc))
            return
        for sub in list(self._subs):
            if sub.filter.matches(message.event) and not sub.offer(message):
                self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        self.unsubscribe(sub)
        sub.end(OVERFLOW)
        if self.metrics is not None:
            self.metrics.sse_dropped.inc()
        log.warning("sse.client_dropped", token=sub.name, buffer=sub.limit)

    def _end_all(self, reason: str) -> None:
        for sub in list(self._subs):
            self.unsubscribe(sub)
            sub.end(reason)

    async def _open(self) -> None:
        async with translated("subscribe to the live mirror"):
            # On a cluster: on the stream's master, where durable publishes PUBLISH.
            pubsub: Any = await stream_pubsub(self.redis, self.keys.events)
        try:
            async with translated("subscribe to the live mirror"):
                await pubsub.psubscribe(self.keys.live_pattern)
                # psubscribe() only sends the command; messages published
                # before Redis confirms would be missed, so wait for it.
                async with asyncio.timeout(self.confirm_timeout):
                    while True:
                        reply = await pubsub.get_message(timeout=self.confirm_timeout)
                        if reply is not None and reply["type"] == "psubscribe":
                            break
        except (EventBusError, TimeoutError):
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        self._pubsub = pubsub
        self._connected.set()

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self._connected.clear()
        if pubsub is not None:
            with contextlib.suppress(rexc.RedisError, OSError):
                await pubsub.aclose()

    async def _run(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            try:
                if self._pubsub is None:
                    await self._open()
                    log.info("sse.mirror_resubscribed")
                    delay = 0.1
                await self._pump(self._pubsub)
            except Exception as exc:  # Redis errors, and anything else: never stop the hub
                log.warning("sse.mirror_lost", error=type(exc).__name__, retry_in=delay)
                await self._close_pubsub()
                self._end_all(MIRROR_LOST)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, self.max_backoff)
                self._beat()

    async def _pump(self, pubsub: Any) -> None:
        # The stop flag is checked as well as cancellation: redis-py 8.1 with
        # hiredis can swallow a cancel that lands while a reply is parsed.
        while not self._stopping.is_set():
            self._beat()
            with _unavailable():
                message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            kind = message["type"]
            if kind == "pmessage":
                self.dispatch(message["data"])
            elif kind == "psubscribe":
                # redis-py reconnected and resubscribed on its own: whatever
                # was published in between is lost to current clients.
                log.warning("sse.mirror_reconnected")
                self._end_all(MIRROR_LOST)

    def _beat(self) -> None:
        if self.health is not None:
            self.health.beat(_HUB_LOOP, allowance=60.0)


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
        raise BrokerUnavailable(f"live mirror: Redis is unreachable ({exc})") from exc


def parse_types(values: Sequence[str]) -> tuple[str, ...]:
    """Validated type globs; ``ValueError`` naming a bad one."""
    for pattern in values:
        if len(pattern) > 128 or not re.fullmatch(r"[a-z0-9_.*?\[\]!-]+", pattern):
            raise ValueError(
                f"type filter {pattern[:40]!r} is not a glob over dotted lowercase names, "
                "e.g. capsule.* or host.down"
            )
    return tuple(values)
