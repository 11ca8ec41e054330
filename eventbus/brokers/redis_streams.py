"""Redis Streams backend: the durable log, the consumer group and the live mirror.

Wraps an injected ``redis.asyncio.Redis`` (never subclasses it). Redis errors
are translated into ``BrokerError`` / ``BrokerUnavailable`` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

import redis.asyncio as aioredis
import redis.exceptions as rexc

from ..errors import BrokerError, BrokerUnavailable
from ..keys import Keys, partition_of, qualified, split_entry
from ..live import live_message, lua_live_message
from .base import Broker, DeadLetter, Received
from .cluster import check_replicated, is_cluster, ready, refresh_slots, stream_pubsub
from .partitions import check_partition_count
from .redis_connect import connect
from .redis_errors import UNAVAILABLE, reply_text, translate_errors, translated
from .redis_replies import StreamEntry, confirmed, live_messages
from .redis_replies import dead_letter as parse_dead_letter
from .redis_replies import entries as parse_entries

__all__ = [
    "PUBLISH_SCRIPT",
    "RedisStreams",
    "StreamEntry",
    "connect",
    "reply_text",
    "translate_errors",
    "translated",
]

# XADD then PUBLISH of the live mirror message, in one round trip and atomically.
# The live message embeds the stream id, so SSE clients can resume from it.
# KEYS[1] stream; ARGV: payload, live channel, maxlen ("" = no cap), the
# partition's suffix of the live message's stream id ("" in partition 0).
PUBLISH_SCRIPT: Final = f"""
local id
if ARGV[3] ~= '' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'payload', ARGV[1])
else
  id = redis.call('XADD', KEYS[1], '*', 'payload', ARGV[1])
end
redis.call('PUBLISH', ARGV[2], {lua_live_message("id .. ARGV[4]", "ARGV[1]")})
return id
"""

_UNAVAILABLE = UNAVAILABLE


class RedisStreams:
    """Stream operations under one key prefix; a ``Broker`` (see ``brokers.base``).

    ``claim_idle`` and ``max_receives`` (seconds, count) are for ``consume``:
    it first claims entries pending longer than ``claim_idle`` (other
    consumers' that stopped), and sets aside as dead letters those received
    more than ``max_receives`` times. Without ``claim_idle`` it only reads new
    entries (the worker reclaims on its own schedule).

    ``partitions`` (``broker.partitions``): a publish goes to the stream of
    ``partition_of(team_id)`` and returns its id qualified with the partition
    (``<id>@<k>``, plain in partition 0; see ``eventbus.keys``); the first
    publish checks the stored partition count (``brokers.partitions``). The
    consuming methods act on ``keys``' own stream: the worker holds one
    ``RedisStreams`` per partition (``part()``); ``consume`` / ``ack`` /
    ``dead_letter`` (the ``Broker`` protocol) span every partition.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        claim_idle: float | None = None,
        max_receives: int | None = None,
        replica_acks: int = 0,
        replica_ack_timeout: float = 2.0,
        partitions: int = 1,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.claim_idle = claim_idle
        self.max_receives = max_receives
        self.replica_acks = replica_acks  # see BrokerSettings.replica_acks
        self.replica_ack_timeout = replica_ack_timeout
        self.partitions = partitions
        self._parts = keys.partitions(partitions) if partitions > 1 else [keys]
        self._publish = redis.register_script(PUBLISH_SCRIPT)
        self._cluster = is_cluster(redis)
        self._count_checked = False
        self._next_wait = 0  # the partition consume() waits on when none had entries

    def part(self, partition: int) -> RedisStreams:
        """The stream operations of one partition (its own keys, nothing spanning)."""
        return RedisStreams(
            self.redis,
            self._parts[partition],
            claim_idle=self.claim_idle,
            max_receives=self.max_receives,
            replica_acks=self.replica_acks,
            replica_ack_timeout=self.replica_ack_timeout,
        )

    def parts(self) -> list[RedisStreams]:
        """One per partition: this one itself when there is one partition."""
        if self.partitions == 1:
            return [self]
        return [self.part(part) for part in range(self.partitions)]

    async def check_partitions(self) -> None:
        """Refuse a ``partitions`` other than the stored count (see ``brokers.partitions``)."""
        await check_partition_count(self.redis, self.keys.partition(0), self.partitions)
        self._count_checked = True

    # -- publishing ---------------------------------------------------------

    async def publish(self, team_id: str, payload: str, maxlen: int | None = None) -> str:
        if self.replica_acks or not self._count_checked:
            [stream_id] = await self.publish_many([(team_id, payload)], maxlen)
            return stream_id
        part = partition_of(team_id, self.partitions)
        keys = self._parts[part]
        async with translated("publish"):
            stream_id = await self._publish(
                keys=[keys.events], args=self._args(keys, team_id, payload, maxlen)
            )
        return qualified(reply_text(stream_id), part)

    def _args(self, keys: Keys, team_id: str, payload: str, maxlen: int | None) -> list[Any]:
        suffix = qualified("", keys.part)
        return [payload, self.keys.live(team_id), "" if maxlen is None else maxlen, suffix]

    async def publish_many(
        self, items: Sequence[tuple[str, str]], maxlen: int | None = None
    ) -> list[str]:
        """Publish (team_id, payload) pairs, one pipeline per partition; ids in order.

        With ``replica_acks``, each pipeline (one connection to its stream's
        master) ends with ``WAIT``: the ids come back only once that many
        replicas have the entries, so a failover cannot lose them.
        """
        if not items:
            return []
        if not self._count_checked:
            await self.check_partitions()
        batches: dict[int, list[int]] = {}
        for index, (team_id, _payload) in enumerate(items):
            batches.setdefault(partition_of(team_id, self.partitions), []).append(index)
        ids: list[str] = [""] * len(items)
        results = await asyncio.gather(
            *(
                self._publish_part(part, [items[index] for index in at], maxlen)
                for part, at in batches.items()
            )
        )
        for (part, at), got in zip(batches.items(), results, strict=True):
            for index, stream_id in zip(at, got, strict=True):
                ids[index] = qualified(stream_id, part)
        return ids

    async def _publish_part(
        self, part: int, items: Sequence[tuple[str, str]], maxlen: int | None
    ) -> list[str]:
        keys = self._parts[part]
        async with translated("publish_many"):
            pipe = self.redis.pipeline(transaction=False)
            for team_id, payload in items:
                args = self._args(keys, team_id, payload, maxlen)
                if self._cluster:
                    # A cluster pipeline refuses EVALSHA (and a failed-over master
                    # may not have the script cached): the script's text goes along.
                    pipe.execute_command("EVAL", PUBLISH_SCRIPT, 1, keys.events, *args)
                    continue
                # Script objects on a pipeline are loaded once before it runs.
                await self._publish(keys=[keys.events], args=args, client=pipe)
            if self.replica_acks:
                await self._queue_wait(pipe, keys)
            results = await pipe.execute(raise_on_error=False)
        if self._cluster and any(isinstance(r, _UNAVAILABLE) for r in results):
            await refresh_slots(self.redis)  # see refresh_slots: the next call finds the master
        if self.replica_acks:
            check_replicated(results.pop(), self.replica_acks, self.replica_ack_timeout)
        ids = []
        for result in results:
            if isinstance(result, _UNAVAILABLE):
                raise BrokerUnavailable(f"publish_many: Redis is unreachable ({result})")
            if isinstance(result, Exception):
                raise BrokerError(f"publish_many: Redis error: {result}")
            ids.append(reply_text(result))
        return ids

    async def _queue_wait(self, pipe: Any, keys: Keys) -> None:
        timeout_ms = max(1, int(self.replica_ack_timeout * 1000))
        if not self._cluster:
            pipe.execute_command("WAIT", self.replica_acks, timeout_ms)
            return
        node = await self._stream_node(keys)
        pipe.execute_command("WAIT", self.replica_acks, timeout_ms, target_nodes=node)

    async def publish_transient(self, team_id: str, payload: str) -> int:
        channel, message = self.keys.live(team_id), live_message(None, payload)
        async with translated("publish_transient"):
            if self._cluster:
                # From the master of the team's stream, as its durable publishes:
                # the cluster bus keeps one node's messages in order, not two nodes'.
                part = self._parts[partition_of(team_id, self.partitions)]
                node = await self._stream_node(part)
                cluster: Any = self.redis
                receivers = await cluster.execute_command(
                    "PUBLISH", channel, message, target_nodes=node
                )
            else:
                receivers = await self.redis.publish(channel, message)
        return int(receivers)

    async def _stream_node(self, keys: Keys) -> Any:
        await ready(self.redis)  # the slot map names the stream's master
        return cast(Any, self.redis).get_node_from_key(keys.events)

    # -- consuming ----------------------------------------------------------

    async def ensure_group(self, group: str, start: str = "0") -> None:
        """Create the consumer group (and the stream) of every partition; existing is fine."""
        async with translated("create consumer group"):
            for keys in self._parts:
                try:
                    await self.redis.xgroup_create(keys.events, group, id=start, mkstream=True)
                except rexc.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

    async def read(
        self, group: str, consumer: str, count: int, block_ms: int | None, pending: bool = False
    ) -> list[StreamEntry]:
        """New entries (``>``), or this consumer's own pending ones from ``0``."""
        async with translated("read"):
            reply = await self.redis.xreadgroup(
                group,
                consumer,
                {self.keys.events: "0" if pending else ">"},
                count=count,
                block=None if pending else block_ms,
            )
        return parse_entries(reply)

    async def autoclaim(
        self, group: str, consumer: str, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[StreamEntry], list[str]]:
        """XAUTOCLAIM: (next cursor, claimed entries, ids deleted from the stream)."""
        async with translated("reclaim"):
            reply = await self.redis.xautoclaim(
                self.keys.events, group, consumer, min_idle_ms, start_id=start, count=count
            )
        cursor = reply_text(reply[0])
        entries = [StreamEntry(reply_text(i), dict(f or {})) for i, f in reply[1] if f is not None]
        deleted = [reply_text(i) for i in reply[2]] if len(reply) > 2 else []
        return cursor, entries, deleted

    async def delivery_counts(self, group: str, ids: Sequence[str]) -> dict[str, int]:
        """How many times each pending entry was delivered (XPENDING times_delivered)."""
        if not ids:
            return {}
        out: dict[str, int] = {}
        async with translated("pending counts"):
            pipe = self.redis.pipeline(transaction=False)
            for entry_id in ids:
                pipe.xpending_range(self.keys.events, group, min=entry_id, max=entry_id, count=1)
            for rows in await pipe.execute():
                for row in rows:
                    out[reply_text(row["message_id"])] = int(row["times_delivered"])
        return out

    # -- the Broker protocol (brokers.base) ---------------------------------

    async def consume(
        self, group: str, consumer: str, count: int, block: float | None
    ) -> list[Received]:
        """Claimed idle entries first (see the class docstring), then new ones.

        Partitioned: each partition in turn without waiting, ids qualified;
        when none had any, one waits ``block`` (the next call waits on the next).
        """
        if self.partitions > 1:
            return await self._consume_parts(group, consumer, count, block)
        out = await self._claim(group, consumer, count) if self.claim_idle is not None else []
        if len(out) < count:
            wait = None if out or not block else max(1, int(block * 1000))
            entries = await self.read(group, consumer, count - len(out), wait)
            out += [Received(entry.id, entry.payload, 1) for entry in entries]
        return out

    async def _claim(self, group: str, consumer: str, count: int) -> list[Received]:
        min_idle = int((self.claim_idle or 0) * 1000)
        _cursor, entries, deleted = await self.autoclaim(group, consumer, min_idle, "0-0", count)
        if deleted:  # trimmed while pending: nothing left to process
            await self.ack(group, deleted)
        counts = await self.delivery_counts(group, [entry.id for entry in entries])
        out = []
        for entry in entries:
            message = Received(entry.id, entry.payload, counts.get(entry.id, 1))
            if self.max_receives is not None and message.receives > self.max_receives:
                error = (
                    f"received {message.receives} times (consumer.max_receives="
                    f"{self.max_receives}) without being acknowledged"
                )
                await self.dead_letter(group, message, "max_receives", error)
            else:
                out.append(message)
        return out

    async def _consume_parts(
        self, group: str, consumer: str, count: int, block: float | None
    ) -> list[Received]:
        out: list[Received] = []
        for part in range(self.partitions):
            if len(out) < count:
                got = await self.part(part).consume(group, consumer, count - len(out), None)
                out += [Received(qualified(m.id, part), m.payload, m.receives) for m in got]
        if not out and block:
            part, self._next_wait = self._next_wait, (self._next_wait + 1) % self.partitions
            got = await self.part(part).consume(group, consumer, count, block)
            out = [Received(qualified(m.id, part), m.payload, m.receives) for m in got]
        return out

    async def ack(self, group: str, ids: Sequence[str]) -> None:
        """XACK ``ids`` (qualified ids go to their own partition's stream)."""
        by_part: dict[int, list[str]] = {}
        for key in ids:
            entry_id, part = split_entry(key)
            by_part.setdefault(part, []).append(entry_id)
        async with translated("ack"):
            for part, entry_ids in by_part.items():
                await self.redis.xack(self._parts[part].events, group, *entry_ids)

    async def dead_letter(self, group: str, message: Received, reason: str, error: str) -> str:
        """XADD to the dead letters and XACK in one transaction (the store's field names)."""
        entry_id, part = split_entry(message.id)
        if part:
            inner = Received(entry_id, message.payload, message.receives)
            return qualified(await self.part(part).dead_letter(group, inner, reason, error), part)
        fields: dict[Any, Any] = {
            "payload": message.payload or b"",
            "dlq_reason": reason,
            "dlq_error": error[:2000],
            "dlq_at": repr(time.time()),
            "dlq_original_id": message.id,
            "dlq_group": group,
        }
        async with translated("dead letter"), self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.keys.dlq, fields)
            pipe.xack(self.keys.events, group, message.id)
            dead_id, _ = await pipe.execute()
        return reply_text(dead_id)

    async def release(self, group: str, consumer: str) -> None:
        """Nothing to do: pending entries wait for ``claim_idle`` (or this name's restart)."""

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` dead letters (of every partition, ids qualified)."""
        if self.partitions > 1:
            found = [
                dataclasses.replace(dead, id=qualified(dead.id, part))
                for part in range(self.partitions)
                for dead in await self.part(part).dead_letters(count)
            ]
            return sorted(found, key=lambda dead: dead.at)[:count]
        async with translated("list dead letters"):
            rows: Any = await self.redis.xrange(self.keys.dlq, count=count)
        return [parse_dead_letter(raw_id, fields) for raw_id, fields in rows]

    async def redrive(self, ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """Move dead letters back onto their stream, each in one transaction."""
        if self.partitions > 1:
            return await self._redrive_parts(ids)
        moved = []
        async with translated("redrive dead letters"):
            rows: Any = []
            if ids is None:
                rows = await self.redis.xrange(self.keys.dlq)
            for dead_id in ids or ():
                rows += await self.redis.xrange(self.keys.dlq, dead_id, dead_id)
            for raw_id, fields in rows:
                original = {k: v for k, v in fields.items() if not k.startswith(b"dlq_")}
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.xadd(self.keys.events, original)
                    pipe.xdel(self.keys.dlq, raw_id)
                    new_id, _ = await pipe.execute()
                moved.append((reply_text(raw_id), reply_text(new_id)))
        return moved

    async def _redrive_parts(self, ids: Sequence[str] | None) -> list[tuple[str, str]]:
        wanted: dict[int, list[str]] = {}
        for key in ids or ():
            dead_id, part = split_entry(key)
            wanted.setdefault(part, []).append(dead_id)
        moved = []
        for part in range(self.partitions):
            if ids is None or part in wanted:
                for old, new in await self.part(part).redrive(wanted.get(part)):
                    moved.append((qualified(old, part), qualified(new, part)))
        return moved

    @contextlib.asynccontextmanager
    async def live(self) -> AsyncIterator[AsyncIterator[bytes]]:
        """Every team's live channel (``PSUBSCRIBE <prefix>:live:*``) until exit."""
        async with translated("subscribe to the live mirror"):
            pubsub: Any = await stream_pubsub(self.redis, self.keys.events)
        try:
            async with translated("subscribe to the live mirror"):
                await pubsub.psubscribe(self.keys.live_pattern)
                await confirmed(pubsub)
            yield live_messages(pubsub)
        finally:
            with contextlib.suppress(*_UNAVAILABLE, rexc.RedisError):
                await pubsub.aclose()


if TYPE_CHECKING:  # mypy checks that RedisStreams keeps the Broker protocol
    _CONFORMS: type[Broker] = RedisStreams
