"""SSE resume over several partitions (``broker.partitions`` N > 1).

A token may see teams of several partitions, and each partition is its own
stream with its own ids, so one stream id cannot say where a client is. With
N > 1 the SSE ``id`` of every durable event is a *cursor*: the last id sent
(or read past) in each partition, comma-separated in partition order, e.g.
``1700000000000-3,1700000000012-0,0-0``. A fresh client's cursor starts at
each stream's newest entry when it connected. With one partition the id is
the plain stream id, as before partitions.

``Last-Event-ID`` must be such a cursor with exactly N ids: a single stream
id (a client of the unpartitioned deployment), a cursor of another count, or
anything malformed is refused with 400 and a message saying why, never
silently read as "from now". The replay reads every partition after its id,
merged by time, at most ``http.replay_limit`` events; afterwards a live
message is skipped when its id is not after the cursor's id for ITS
partition (each partition's PUBLISH comes from its own master on a cluster,
so the seams are per partition).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import structlog
from sse_starlette import ServerSentEvent

from eventbus.brokers.redis_streams import reply_text, translated
from eventbus.errors import EnvelopeError, EventBusError
from eventbus.keys import Keys, split_entry
from eventbus.live import LiveMessage, parse_entry, parse_stream_id

__all__ = ["Cursor", "PartitionedReplay"]

log = structlog.get_logger(__name__)

_PAGE = 200
StreamId = tuple[int, int]


class Cursor:
    """The last stream id per partition one client has."""

    def __init__(self, ids: Sequence[StreamId]) -> None:
        self.ids = list(ids)

    @classmethod
    def parse(cls, text: str, partitions: int) -> Cursor:
        """``ValueError`` naming what is wrong, for a 400."""
        parts = text.split(",")
        if len(parts) != partitions:
            shown = text[:80]
            raise ValueError(
                f"{shown!r} names {len(parts)} partition position(s), but the stream has "
                f"broker.partitions={partitions}: a Last-Event-ID here is {partitions} stream "
                "ids, comma-separated (the SSE id this server sent); reconnect without one "
                "to start from now"
            )
        return cls([parse_stream_id(part) for part in parts])

    def text(self) -> str:
        return ",".join(f"{ms}-{seq}" for ms, seq in self.ids)

    def sent(self, message: LiveMessage) -> bool:
        """Whether ``message`` is not after this cursor in its partition (a replayed one)."""
        assert message.stream_id is not None
        raw, part = split_entry(message.stream_id)
        return part >= len(self.ids) or parse_stream_id(raw) <= self.ids[part]

    def advance(self, message: LiveMessage) -> None:
        assert message.stream_id is not None
        raw, part = split_entry(message.stream_id)
        if part < len(self.ids):
            self.ids[part] = max(self.ids[part], parse_stream_id(raw))


class PartitionedReplay:
    """Reads partitions for one client: the starting cursor, and the replay after one."""

    def __init__(self, redis: Any, keys: Keys, partitions: int) -> None:
        self.redis = redis
        self.parts = keys.partitions(partitions)

    async def newest(self) -> Cursor:
        """Each stream's newest id (``0-0`` for an empty one): a fresh client's cursor."""
        ids = []
        async with translated("read the newest stream ids"):
            for keys in self.parts:
                rows = await self.redis.xrevrange(keys.events, count=1)
                ids.append(parse_stream_id(reply_text(rows[0][0])) if rows else (0, 0))
        return Cursor(ids)

    async def replay(
        self, cursor: Cursor, accepts: Any, limit: int
    ) -> AsyncIterator[ServerSentEvent]:
        """Events after ``cursor`` in every partition, oldest first; the cursor advances.

        ``accepts(event)`` is the client's filter. A cursor ahead of a
        stream (reset since) is moved back to that stream's newest entry.
        """
        try:
            newest = await self.newest()
            for part, (have, top) in enumerate(zip(cursor.ids, newest.ids, strict=True)):
                if have > top:
                    log.info("sse.replay_id_ahead_of_stream", partition=part)
                    cursor.ids[part] = top
            sent = scanned = 0
            pending: list[tuple[StreamId, int, LiveMessage | None]] = []
            exhausted = [False] * len(self.parts)
            while sent < limit and scanned < limit * 10:
                for part in range(len(self.parts)):
                    if not exhausted[part] and not any(p == part for _, p, _ in pending):
                        rows = await self._page(part, cursor.ids[part])
                        exhausted[part] = len(rows) < _PAGE
                        pending += rows
                if not pending:
                    return
                pending.sort(key=lambda row: (row[0], row[1]))
                at, part, message = pending.pop(0)
                cursor.ids[part] = at
                scanned += 1
                if message is not None and accepts(message.event):
                    sent += 1
                    yield ServerSentEvent(data=message.data, id=cursor.text())
            if pending or not all(exhausted):
                yield ServerSentEvent(
                    event="replay-truncated",
                    data=json.dumps({"last_id": cursor.text(), "sent": sent}),
                )
        except EventBusError as exc:
            log.warning("sse.replay_failed", error=str(exc))
            yield ServerSentEvent(event="error", data=json.dumps({"reason": "replay failed"}))

    async def _page(
        self, part: int, after: StreamId
    ) -> list[tuple[StreamId, int, LiveMessage | None]]:
        start = f"({after[0]}-{after[1]}"
        async with translated("replay from the stream"):
            rows: Any = await self.redis.xrange(
                self.parts[part].events, min=start, max="+", count=_PAGE
            )
        out = []
        for raw_id, fields in rows:
            entry_id = reply_text(raw_id)
            out.append((parse_stream_id(entry_id), part, _message(entry_id, part, fields)))
        return out


def _message(entry_id: str, part: int, fields: dict[bytes, bytes]) -> LiveMessage | None:
    payload = fields.get(b"payload")
    if payload is None:
        return None
    try:
        message = parse_entry(entry_id, payload)
    except EnvelopeError:
        return None  # the worker dead-letters it; a dashboard skips it
    return LiveMessage(message.event, message.data, f"{entry_id}@{part}" if part else entry_id)
