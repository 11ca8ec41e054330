"""The live mirror over Server-Sent Events.

One Redis Pub/Sub subscription per process (the pattern ``<prefix>:live:*``)
feeds a ``LiveHub``. The hub parses each message once and offers it to every
connected ``Subscriber`` whose filter matches, through a buffer bounded by
``http.client_buffer``. A subscriber whose buffer is full is dropped (counted
in ``eventbus_sse_dropped``) and its connection closed: memory never grows
with a slow client, and a browser reconnects and resumes (below).

Each SSE message's ``data`` is the event envelope as JSON. Durable events
carry their stream id as the SSE ``id``; transient events have no ``id``.

Resuming: a ``Last-Event-ID`` header (sent by ``EventSource`` on reconnect)
or ``?last_event_id=`` replays the durable events after that id from the
stream (XRANGE, at most ``http.replay_limit`` events sent and ten times as
many entries read) before going live. The client is subscribed first and its
live messages are buffered during the replay; afterwards live durable
messages whose stream id is not after the last id read are skipped, so there
is neither gap nor duplicate at the seam. Transient events are never
replayed. When the limit cuts a replay short, an ``event: replay-truncated``
message says where it stopped.

Other named events: ``overflow`` (this client was too slow and is being
disconnected) and ``error`` (the replay failed). A stream also ends when the
Pub/Sub connection is lost, since messages may have been missed; clients
reconnect with their last id.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import redis.asyncio as aioredis
import redis.exceptions as rexc
import structlog
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from consumers.health import Health
from consumers.metrics import Metrics
from eventbus.brokers.redis_streams import translated
from eventbus.envelope import Event, parse_event
from eventbus.errors import BrokerUnavailable, EnvelopeError, EventBusError
from eventbus.keys import Keys

__all__ = [
    "OUTCOMES",
    "LiveFilter",
    "LiveHub",
    "LiveMessage",
    "LiveResponse",
    "Subscriber",
    "live_response",
    "parse_live",
    "parse_stream_id",
    "parse_types",
]

log = structlog.get_logger(__name__)

OUTCOMES: Final = frozenset({"success", "error", "none"})
OVERFLOW: Final = "overflow"
STOPPING: Final = "server stopping"
MIRROR_LOST: Final = "live mirror interrupted"

_STREAM_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")
_MAX_MESSAGE_BYTES = 256 * 1024
_REPLAY_PAGE = 200
_RETRY_MS = 2000  # EventSource reconnection delay
_DROP_GRACE = 1.0  # seconds a dropped client's stream gets to end by itself
_HUB_LOOP = "sse-hub"


def parse_stream_id(value: str) -> tuple[int, int]:
    """``"1700000000000-3"`` as a comparable pair; ``ValueError`` if malformed."""
    match = _STREAM_ID.match(value)
    if match is None:
        raise ValueError(f"{value[:40]!r} is not a stream id such as 1700000000000-0")
    return int(match.group(1)), int(match.group(2) or 0)


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One live mirror message, parsed and validated once for every client."""

    event: Event
    data: str  # the envelope JSON, sent as the SSE data
    stream_id: str | None = None  # durable events only

    def to_sse(self) -> ServerSentEvent:
        return ServerSentEvent(data=self.data, id=self.stream_id)


def parse_live(raw: bytes | str) -> LiveMessage:
    """A live mirror message ``{"stream_id"?, "event"}``; ``EnvelopeError`` if invalid."""
    if len(raw) > _MAX_MESSAGE_BYTES:
        raise EnvelopeError(f"live message is {len(raw)} bytes, over {_MAX_MESSAGE_BYTES}")
    try:
        obj = json.loads(raw)
    except ValueError:
        raise EnvelopeError("live message is not JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), dict):
        raise EnvelopeError("live message has no 'event' object")
    stream_id = obj.get("stream_id")
    if stream_id is not None and (
        not isinstance(stream_id, str) or _STREAM_ID.match(stream_id) is None
    ):
        raise EnvelopeError("live message has a malformed 'stream_id'")
    event = parse_event(obj["event"])
    return LiveMessage(event, event.to_json(), stream_id)


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

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

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
        pubsub: Any = self.redis.pubsub()
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
            except (EventBusError, rexc.RedisError, OSError, TimeoutError) as exc:
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


class _LiveStream:
    """The event source of one client: replay (if asked), then live."""

    def __init__(
        self,
        hub: LiveHub,
        sub: Subscriber,
        last_event_id: str | None,
        replay_limit: int,
    ) -> None:
        self.hub = hub
        self.sub = sub
        self.last_event_id = last_event_id
        self.replay_limit = replay_limit
        self.seam: tuple[int, int] | None = None  # last stream id the replay read

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent(comment="connected", retry=_RETRY_MS)
            if self.last_event_id is not None and self.replay_limit > 0:
                async for item in self._replay(self.last_event_id):
                    yield item
            while True:
                message = await self.sub.get()
                if message is None:
                    if self.sub.end_reason == OVERFLOW:
                        yield ServerSentEvent(
                            event="overflow",
                            data=json.dumps({"reason": "client too slow; reconnect to resume"}),
                        )
                    return
                if (
                    self.seam is not None
                    and message.stream_id is not None
                    and parse_stream_id(message.stream_id) <= self.seam
                ):
                    continue  # already sent by the replay
                yield message.to_sse()
        finally:
            self.hub.unsubscribe(self.sub)

    async def _replay(self, after: str) -> AsyncIterator[ServerSentEvent]:
        self.seam = parse_stream_id(after)
        sent = scanned = 0
        scan_limit = self.replay_limit * 10
        start = after
        try:
            while True:
                async with translated("replay from the stream"):
                    rows: list[tuple[bytes, dict[bytes, bytes]]] = await self.hub.redis.xrange(
                        self.hub.keys.events, min=f"({start}", max="+", count=_REPLAY_PAGE
                    )  # type: ignore[assignment]
                for raw_id, fields in rows:
                    start = _text(raw_id)
                    self.seam = parse_stream_id(start)
                    scanned += 1
                    message = _from_entry(start, fields)
                    if message is not None and self.sub.filter.matches(message.event):
                        yield message.to_sse()
                        sent += 1
                    if sent >= self.replay_limit or scanned >= scan_limit:
                        if await self._more_after(start):
                            yield ServerSentEvent(
                                event="replay-truncated",
                                data=json.dumps({"last_id": start, "sent": sent}),
                            )
                        return
                if len(rows) < _REPLAY_PAGE:
                    return
        except EventBusError as exc:
            log.warning("sse.replay_failed", error=str(exc))
            yield ServerSentEvent(event="error", data=json.dumps({"reason": "replay failed"}))
            self.sub.end("replay failed")

    async def _more_after(self, entry_id: str) -> bool:
        async with translated("replay from the stream"):
            rows = await self.hub.redis.xrange(
                self.hub.keys.events, min=f"({entry_id}", max="+", count=1
            )
        return bool(rows)


def _from_entry(entry_id: str, fields: dict[bytes, bytes]) -> LiveMessage | None:
    payload = fields.get(b"payload")
    if payload is None:
        return None
    try:
        return parse_live(b'{"stream_id":"' + entry_id.encode() + b'","event":' + payload + b"}")
    except EnvelopeError:
        return None  # the worker dead-letters it; a dashboard skips it


class LiveResponse:
    """An ``EventSourceResponse`` that is cut off if its client is dropped.

    A client that stopped reading leaves the response blocked in ``send``,
    where the event generator cannot notice it was dropped; after a short
    grace the response is cancelled, and the server closes the connection.
    """

    def __init__(self, response: EventSourceResponse, hub: LiveHub, sub: Subscriber) -> None:
        self.response = response
        self.hub = hub
        self.sub = sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._cut_when_ended, group.cancel_scope)
                await self.response(scope, receive, send)
                group.cancel_scope.cancel()
        finally:
            self.hub.unsubscribe(self.sub)

    async def _cut_when_ended(self, scope: anyio.CancelScope) -> None:
        await self.sub.wait_ended()
        await anyio.sleep(_DROP_GRACE)  # a deadline: cancelled when the stream ends first
        scope.cancel()


def live_response(
    hub: LiveHub,
    live_filter: LiveFilter,
    *,
    last_event_id: str | None,
    heartbeat: float,
    replay_limit: int,
    client_name: str = "",
) -> LiveResponse:
    """Subscribe a client and build its streaming response.

    The subscription happens here, before the replay starts, so that nothing
    published in between is missed. Raises ``BrokerUnavailable`` while the
    mirror is down and ``ValueError`` for a malformed ``last_event_id``.
    """
    if last_event_id is not None:
        parse_stream_id(last_event_id)
    sub = hub.subscribe(live_filter, client_name)
    stream = _LiveStream(hub, sub, last_event_id, replay_limit)
    response = EventSourceResponse(
        stream.events(),
        ping=heartbeat,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
    )
    return LiveResponse(response, hub, sub)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_types(values: Sequence[str]) -> tuple[str, ...]:
    """Validated type globs; ``ValueError`` naming a bad one."""
    for pattern in values:
        if len(pattern) > 128 or not re.fullmatch(r"[a-z0-9_.*?\[\]!-]+", pattern):
            raise ValueError(
                f"type filter {pattern[:40]!r} is not a glob over dotted lowercase names, "
                "e.g. capsule.* or host.down"
            )
    return tuple(values)
