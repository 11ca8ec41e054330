"""Redis Streams backend: the durable log, the consumer group and the live mirror.

Wraps an injected ``redis.asyncio.Redis`` (never subclasses it). Redis errors
are translated into ``BrokerError`` / ``BrokerUnavailable`` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ..errors import BrokerError, BrokerUnavailable
from ..keys import Keys
from ..live import live_message, lua_live_message
from .base import Broker, DeadLetter, Received
from .cluster import (
    CLUSTER_UNAVAILABLE,
    check_replicated,
    connect_cluster,
    is_cluster,
    is_cluster_url,
    ready,
    refresh_slots,
    stream_pubsub,
)
from .packing import hiredis_connection_class

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
# KEYS[1] stream; ARGV: payload, live channel, maxlen ("" = no cap)
PUBLISH_SCRIPT: Final = f"""
local id
if ARGV[3] ~= '' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'payload', ARGV[1])
else
  id = redis.call('XADD', KEYS[1], '*', 'payload', ARGV[1])
end
redis.call('PUBLISH', ARGV[2], {lua_live_message("id", "ARGV[1]")})
return id
"""

_UNAVAILABLE: tuple[type[Exception], ...] = (
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
    except _UNAVAILABLE as exc:
        raise BrokerUnavailable(f"{what}: Redis is unreachable ({exc})") from exc
    except (rexc.RedisError, rexc.RedisClusterException) as exc:
        # RedisClusterException is not a RedisError: "cannot be connected" (caused
        # by a connection error) is an outage, a transaction across slots is not.
        if isinstance(exc.__cause__, _UNAVAILABLE):
            raise BrokerUnavailable(f"{what}: Redis is unreachable ({exc})") from exc
        raise BrokerError(f"{what}: Redis error: {exc}") from exc


@contextlib.asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    with translate_errors(what):
        yield


def connect(
    url: str,
    *,
    retries: int = 3,
    socket_timeout: float | None = 5.0,
    max_connections: int = 64,
    pool_timeout: float = 20.0,
) -> aioredis.Redis:
    """An asyncio Redis client that retries transient connection errors.

    At most ``max_connections`` connections are open; a command that finds
    them all busy waits up to ``pool_timeout`` seconds for one (redis-py's
    default pool fails at once instead). Its connections pack commands with
    hiredis (see ``packing``).

    A ``redis+cluster://`` URL (see ``BrokerSettings.cluster``) gives a
    ``redis.asyncio.RedisCluster`` typed as ``Redis``: the commands eventbus
    sends work on both (one hash tag per prefix; see ``brokers.cluster``),
    which the cluster tests check on a real cluster. ``max_connections`` is
    then per node, and a busy node is retried rather than waited for.
    """
    if is_cluster_url(url):
        client = connect_cluster(
            url, retries=retries, socket_timeout=socket_timeout, max_connections=max_connections
        )
        return cast(aioredis.Redis, client)
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries),
        retry_on_error=[rexc.ConnectionError, rexc.TimeoutError],
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
    )
    # from_url picks the class from the URL scheme (the URL wins over a
    # connection_class argument); the pool has no connections yet.
    pool.connection_class = hiredis_connection_class(pool.connection_class)
    return aioredis.Redis.from_pool(pool)


@dataclass(slots=True)  # not frozen: one per entry read, and frozen inits cost 4x
class StreamEntry:
    """One stream entry as read by a consumer."""

    id: str
    fields: dict[bytes, bytes]

    @property
    def payload(self) -> bytes | None:
        return self.fields.get(b"payload")


class RedisStreams:
    """Stream operations under one key prefix; a ``Broker`` (see ``brokers.base``).

    ``claim_idle`` and ``max_receives`` (seconds, count) are for ``consume``:
    it first claims entries pending longer than ``claim_idle`` (other
    consumers' that stopped), and sets aside as dead letters those received
    more than ``max_receives`` times. Without ``claim_idle`` it only reads new
    entries (the worker reclaims on its own schedule).
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
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.claim_idle = claim_idle
        self.max_receives = max_receives
        self.replica_acks = replica_acks  # see BrokerSettings.replica_acks
        self.replica_ack_timeout = replica_ack_timeout
        self._publish = redis.register_script(PUBLISH_SCRIPT)
        self._cluster = is_cluster(redis)

    # -- publishing ---------------------------------------------------------

    async def publish(self, team_id: str, payload: str, maxlen: int | None = None) -> str:
        if self.replica_acks:
            [stream_id] = await self.publish_many([(team_id, payload)], maxlen)
            return stream_id
        async with translated("publish"):
            stream_id = await self._publish(
                keys=[self.keys.events],
                args=[payload, self.keys.live(team_id), "" if maxlen is None else maxlen],
            )
        return reply_text(stream_id)

    async def publish_many(
        self, items: Sequence[tuple[str, str]], maxlen: int | None = None
    ) -> list[str]:
        """Publish (team_id, payload) pairs in one pipeline; ids in order.

        With ``replica_acks``, the same pipeline (one connection to the
        stream's master) ends with ``WAIT``: the ids come back only once that
        many replicas have the entries, so a failover cannot lose them.
        """
        if not items:
            return []
        async with translated("publish_many"):
            pipe = self.redis.pipeline(transaction=False)
            cap = "" if maxlen is None else maxlen
            for team_id, payload in items:
                args = [payload, self.keys.live(team_id), cap]
                if self._cluster:
                    # A cluster pipeline refuses EVALSHA (and a failed-over master
                    # may not have the script cached): the script's text goes along.
                    pipe.execute_command("EVAL", PUBLISH_SCRIPT, 1, self.keys.events, *args)
                    continue
                # Script objects on a pipeline are loaded once before it runs.
                await self._publish(keys=[self.keys.events], args=args, client=pipe)
            if self.replica_acks:
                await self._queue_wait(pipe)
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

    async def _queue_wait(self, pipe: Any) -> None:
        timeout_ms = max(1, int(self.replica_ack_timeout * 1000))
        if not self._cluster:
            pipe.execute_command("WAIT", self.replica_acks, timeout_ms)
            return
        node = await self._stream_node()
        pipe.execute_command("WAIT", self.replica_acks, timeout_ms, target_nodes=node)

    async def publish_transient(self, team_id: str, payload: str) -> int:
        channel, message = self.keys.live(team_id), live_message(None, payload)
        async with translated("publish_transient"):
            if self._cluster:
                # From the stream's master, as the durable publishes: the cluster
                # bus keeps one node's messages in order, not two nodes'.
                node = await self._stream_node()
                cluster: Any = self.redis
                receivers = await cluster.execute_command(
                    "PUBLISH", channel, message, target_nodes=node
                )
            else:
                receivers = await self.redis.publish(channel, message)
        return int(receivers)

    async def _stream_node(self) -> Any:
        await ready(self.redis)  # the slot map names the stream's master
        return cast(Any, self.redis).get_node_from_key(self.keys.events)

    # -- consuming ----------------------------------------------------------

    async def ensure_group(self, group: str, start: str = "0") -> None:
        """Create the consumer group (and the stream); an existing group is fine."""
        async with translated("create consumer group"):
            try:
                await self.redis.xgroup_create(self.keys.events, group, id=start, mkstream=True)
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
        return _entries(reply)

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
        """Claimed idle entries first (see the class docstring), then new ones."""
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

    async def ack(self, group: str, ids: Sequence[str]) -> None:
        if ids:
            async with translated("ack"):
                await self.redis.xack(self.keys.events, group, *ids)

    async def dead_letter(self, group: str, message: Received, reason: str, error: str) -> str:
        """XADD to the dead letters and XACK in one transaction (the store's field names)."""
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
        async with translated("list dead letters"):
            rows: Any = await self.redis.xrange(self.keys.dlq, count=count)
        return [_dead_letter(raw_id, fields) for raw_id, fields in rows]

    async def redrive(self, ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """Move dead letters back onto the stream, each in one transaction."""
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

    @contextlib.asynccontextmanager
    async def live(self) -> AsyncIterator[AsyncIterator[bytes]]:
        """Every team's live channel (``PSUBSCRIBE <prefix>:live:*``) until exit."""
        async with translated("subscribe to the live mirror"):
            pubsub: Any = await stream_pubsub(self.redis, self.keys.events)
        try:
            async with translated("subscribe to the live mirror"):
                await pubsub.psubscribe(self.keys.live_pattern)
                await _confirmed(pubsub)
            yield _live_messages(pubsub)
        finally:
            with contextlib.suppress(*_UNAVAILABLE, rexc.RedisError):
                await pubsub.aclose()


def reply_text(value: Any) -> str:
    """A Redis reply value as text (redis-py returns bytes unless decoding is on)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(reply: Any) -> list[StreamEntry]:
    out: list[StreamEntry] = []
    if not reply:
        return out
    for _stream, rows in reply:
        for entry_id, fields in rows:
            # A pending entry that was deleted from the stream comes back as None.
            out.append(StreamEntry(reply_text(entry_id), dict(fields or {})))
    return out


def _dead_letter(raw_id: Any, fields: dict[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        id=reply_text(raw_id),
        original_id=reply_text(fields.get(b"dlq_original_id", b"")),
        reason=reply_text(fields.get(b"dlq_reason", b"")),
        error=reply_text(fields.get(b"dlq_error", b"")),
        at=float(fields.get(b"dlq_at", b"0") or 0),
        payload=fields.get(b"payload", b""),
    )


async def _confirmed(pubsub: Any) -> None:
    """Wait for Redis to confirm the subscription: what is published before is not seen."""
    async with asyncio.timeout(10):
        while True:
            reply = await pubsub.get_message(timeout=10)
            if reply is not None and reply["type"] == "psubscribe":
                return


async def _live_messages(pubsub: Any) -> AsyncIterator[bytes]:
    while True:
        async with translated("read the live mirror"):
            message = await pubsub.get_message(timeout=None)
        if message is not None and message.get("type") == "pmessage":
            data = message["data"]
            yield data if isinstance(data, bytes) else str(data).encode()


if TYPE_CHECKING:  # mypy checks that RedisStreams keeps the Broker protocol
    _CONFORMS: type[Broker] = RedisStreams
