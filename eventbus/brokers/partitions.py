"""The partition count a deployment's streams were written with, and its guard.

``broker.partitions`` decides which stream a team's events go to
(``eventbus.keys.partition_of``), so publishers and workers must agree on it,
and it must not change while events wait in the old partitions: a worker
reading the new partitions only would strand them, and a team moving to
another partition would lose its order. The count is stored once (the global
key ``Keys.partition_count``; absent means 1, the layout before partitions,
so existing deployments write nothing). A process whose ``broker.partitions``
differs refuses to start unless every old partition is drained (nothing
unread, nothing pending, no retry or digest scheduled); then it records the
new count. The drain-and-switch procedure is in docs/operations.md.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc

from ..errors import ConfigError
from ..keys import Keys
from .redis_errors import reply_text, translated

__all__ = ["PartitionCountError", "check_partition_count", "partition_backlog", "stored_count"]

_PROCEDURE = (
    "To change it: stop the publishers, let the workers drain every partition "
    "(eventbus_stream_lag, eventbus_stream_pending and eventbus_retries_due at 0), stop "
    "the workers, set broker.partitions everywhere and start the workers, then the "
    "publishers (docs/operations.md, Partitions); or set broker.partitions back to the "
    "stored count"
)


class PartitionCountError(ConfigError):
    """``broker.partitions`` differs from the count the streams were written with."""


async def stored_count(redis: aioredis.Redis, keys: Keys) -> int:
    """The recorded partition count (1 when none is recorded)."""
    async with translated("read the partition count"):
        raw = await redis.get(keys.partition_count)
    return int(reply_text(raw)) if raw is not None else 1


async def partition_backlog(redis: aioredis.Redis, keys: Keys) -> list[str]:
    """What still waits in one partition (empty: drained)."""
    waiting: list[str] = []
    async with translated("inspect a partition"):
        try:
            stream: Any = await redis.xinfo_stream(keys.events)
        except rexc.ResponseError:
            stream = None  # no stream: nothing was ever written there
        if stream is not None:
            groups: Any = await redis.xinfo_groups(keys.events)
            last = reply_text(stream.get("last-generated-id", "0-0"))
            if not groups and int(stream.get("length", 0)):
                waiting.append(f"{keys.events}: {stream['length']} entries and no group")
            for group in groups:
                name, pending = reply_text(group["name"]), int(group.get("pending", 0))
                delivered = reply_text(group.get("last-delivered-id", "0-0"))
                lag = group.get("lag")
                unread = (lag is None and delivered != last) or bool(lag)
                if pending or unread:
                    waiting.append(
                        f"{keys.events} group {name}: {pending} pending, "
                        f"{'some' if lag is None else lag} unread"
                    )
        retries = int(await redis.zcard(keys.retries))
        groups_due = int(await redis.zcard(keys.groups))
    if retries:
        waiting.append(f"{keys.retries}: {retries} retries scheduled")
    if groups_due:
        waiting.append(f"{keys.groups}: {groups_due} digests open")
    return waiting


async def check_partition_count(redis: aioredis.Redis, keys: Keys, partitions: int) -> None:
    """Refuse a ``partitions`` other than the stored one unless the old ones are drained.

    Drained old partitions: the new count is recorded (1 as no key, the
    unpartitioned layout). Raises ``PartitionCountError`` naming both counts.
    """
    stored = await stored_count(redis, keys)
    if stored == partitions:
        return
    waiting = []
    for part in keys.partitions(stored):
        waiting += await partition_backlog(redis, part)
    if waiting:
        more = f" (and {len(waiting) - 5} more)" if len(waiting) > 5 else ""
        shown = "; ".join(waiting[:5]) + more
        raise PartitionCountError(
            f"broker.partitions is {partitions} but the streams under prefix "
            f"{keys.prefix!r} were written with {stored} partition(s), and events still "
            f"wait there ({shown}). {_PROCEDURE} ({stored})."
        )
    async with translated("record the partition count"):
        if partitions == 1:
            await redis.delete(keys.partition_count)
        else:
            await redis.set(keys.partition_count, partitions)
