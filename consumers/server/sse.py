"""The live mirror over Server-Sent Events (sse-starlette).

Each SSE message's ``data`` is the event envelope as JSON. Durable events
carry their stream id as the SSE ``id``; transient events have no ``id``.
Heartbeat comments (``: heartbeat``) go out every ``http.heartbeat``.

Resuming: a ``Last-Event-ID`` header (sent by ``EventSource`` on reconnect)
or ``?last_event_id=`` replays the durable events after that id from the
stream (XRANGE, at most ``http.replay_limit`` events sent and ten times as
many entries read) before going live. The client is subscribed to the hub
first and its live messages are buffered during the replay; afterwards live
durable messages whose stream id is not after the last id read are skipped,
so there is neither gap nor duplicate at the seam. Transient events are
never replayed. When the limit cuts a replay short, an
``event: replay-truncated`` message says where it stopped.

In RabbitMQ mode (``LiveHub.replays`` false) there is no stream to replay
from: a ``Last-Event-ID`` gets the response header ``X-Eventbus-Replay:
unavailable`` and an ``event: replay-unavailable`` message before the live
events, instead of a silent gap.

With ``broker.partitions`` N > 1 the SSE id is a cursor over the partitions
and the replay reads every partition (``sse_partitions``).

Other named events: ``overflow`` (this client was too slow and is being
disconnected) and ``error`` (the replay failed). A stream also ends when the
hub loses its Pub/Sub subscription; clients reconnect with their last id.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import structlog
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from eventbus.brokers.redis_streams import reply_text, translated
from eventbus.errors import EnvelopeError, EventBusError
from eventbus.live import LiveMessage, parse_entry, parse_stream_id

from .live import OVERFLOW, LiveFilter, LiveHub, Subscriber
from .sse_partitions import Cursor, PartitionedReplay

__all__ = ["NO_REPLAY", "REPLAY_HEADER", "LiveResponse", "live_response"]

log = structlog.get_logger(__name__)

# In RabbitMQ mode nothing is replayed: a client sending Last-Event-ID is told so
# (this header on the response, and a ``replay-unavailable`` event first).
REPLAY_HEADER = "X-Eventbus-Replay"
NO_REPLAY = (
    "Last-Event-ID replay is not available with broker.kind: rabbitmq; "
    "events published while disconnected are not resent (see the delivery records)"
)
_REPLAY_PAGE = 200
_RETRY_MS = 2000  # EventSource reconnection delay
_DROP_GRACE = 1.0  # seconds a dropped client's stream gets to end by itself


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
        if self.hub.partitions > 1 and self.hub.replays:
            async for item in self._partitioned():
                yield item
            return
        try:
            yield ServerSentEvent(comment="connected", retry=_RETRY_MS)
            if self.last_event_id is not None and not self.hub.replays:
                yield ServerSentEvent(
                    event="replay-unavailable",
                    data=json.dumps({"last_event_id": self.last_event_id, "reason": NO_REPLAY}),
                )
            elif self.last_event_id is not None and self.replay_limit > 0:
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
                yield _to_sse(message)
        finally:
            self.hub.unsubscribe(self.sub)

    async def _partitioned(self) -> AsyncIterator[ServerSentEvent]:
        """``events()`` with a cursor over the partitions (see ``sse_partitions``)."""
        replay = PartitionedReplay(self.hub.redis, self.hub.keys, self.hub.partitions)
        try:
            yield ServerSentEvent(comment="connected", retry=_RETRY_MS)
            if self.last_event_id is None:
                cursor = await replay.newest()
            else:
                cursor = Cursor.parse(self.last_event_id, self.hub.partitions)
                if self.replay_limit > 0:
                    async for item in replay.replay(
                        cursor, self.sub.filter.matches, self.replay_limit
                    ):
                        yield item
            while (message := await self.sub.get()) is not None:
                if message.stream_id is None:
                    yield _to_sse(message)
                elif not cursor.sent(message):
                    cursor.advance(message)
                    yield ServerSentEvent(data=message.data, id=cursor.text())
            if self.sub.end_reason == OVERFLOW:
                reason = {"reason": "client too slow; reconnect to resume"}
                yield ServerSentEvent(event="overflow", data=json.dumps(reason))
        except EventBusError as exc:
            log.warning("sse.replay_failed", error=str(exc))
            yield ServerSentEvent(event="error", data=json.dumps({"reason": "replay failed"}))
        finally:
            self.hub.unsubscribe(self.sub)

    async def _replay(self, after: str) -> AsyncIterator[ServerSentEvent]:
        sent = scanned = 0
        scan_limit = self.replay_limit * 10
        start = after
        try:
            newest = await self._newest_id()
            if newest is None or parse_stream_id(after) > parse_stream_id(newest):
                # An id from the future: the stream was reset (or emptied)
                # since the client saw it. Nothing to replay, and no live
                # message may be skipped as "already sent".
                log.info("sse.replay_id_ahead_of_stream", last_event_id=after)
                return
            self.seam = parse_stream_id(after)
            while True:
                async with translated("replay from the stream"):
                    rows: list[tuple[bytes, dict[bytes, bytes]]] = await self.hub.redis.xrange(
                        self.hub.keys.events, min=f"({start}", max="+", count=_REPLAY_PAGE
                    )  # type: ignore[assignment]
                for raw_id, fields in rows:
                    start = reply_text(raw_id)
                    self.seam = parse_stream_id(start)
                    scanned += 1
                    message = _from_entry(start, fields)
                    if message is not None and self.sub.filter.matches(message.event):
                        yield _to_sse(message)
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

    async def _newest_id(self) -> str | None:
        async with translated("replay from the stream"):
            rows = await self.hub.redis.xrevrange(self.hub.keys.events, count=1)
        entry_id = rows[0][0] if rows else None
        return reply_text(entry_id) if entry_id is not None else None

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
        return parse_entry(entry_id, payload)
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
    headers = {}
    if last_event_id is not None and not hub.replays:
        headers[REPLAY_HEADER] = "unavailable"
    elif last_event_id is not None and hub.partitions > 1:
        Cursor.parse(last_event_id, hub.partitions)
    elif last_event_id is not None:
        parse_stream_id(last_event_id)
    sub = hub.subscribe(live_filter, client_name)
    stream = _LiveStream(hub, sub, last_event_id, replay_limit)
    response = EventSourceResponse(
        stream.events(),
        headers=headers,
        ping=heartbeat,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
    )
    return LiveResponse(response, hub, sub)


def _to_sse(message: LiveMessage) -> ServerSentEvent:
    return ServerSentEvent(data=message.data, id=message.stream_id)
