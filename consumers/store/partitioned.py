"""The store over every partition (``broker.partitions``): façades with the one-store API.

Each partition keeps its stream, records, retries and digests in its own slot
(``eventbus.keys``), so the commit script runs once per partition. These
façades keep the interfaces the pipeline and the CLI already use:

- ``PartitionedCommitter.commit(settlements)`` sends each settlement to the
  committer of its partition (see ``partition_of_settlement``), one script
  call per partition touched;
- ``PartitionedStore`` reads records from every partition (the duplicate
  screen's MGET, lookups by id, queries merged newest first);
- ``PartitionedRetries`` / ``PartitionedGroups`` claim due retries and
  digests from every partition, noting where each came from.

With one partition none of this is used: the worker builds the plain ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Collection, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import translated
from eventbus.keys import Keys, partition_of, qualified, split_entry

from .commit import Committer
from .groups import DueGroup, GroupQueue
from .records import DeliveryRecord, DeliveryStore
from .retries import RetryJob, RetryQueue
from .settlement import Settlement

__all__ = [
    "PartitionedCommitter",
    "PartitionedGroups",
    "PartitionedRetries",
    "PartitionedStore",
    "Routes",
    "delivery_store",
    "queues",
]

# Set by a partition's reader task (consumers.reading): the entries it takes
# have their records in that partition (its commits write them there), so the
# duplicate screen reads one partition, not all. Unset elsewhere (retries,
# digests, reclaim mix partitions): every partition is read.
SCREEN_PARTITION: ContextVar[int | None] = ContextVar("eventbus_screen_partition", default=None)

# Routes noted and never committed (a commit that failed) are forgotten past this.
_MAX_ROUTES = 100_000


class Routes:
    """Delivery id -> partition of the retries and digests claimed and not yet committed."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._where: dict[str, int] = {}

    def note(self, delivery_id: str, partition: int) -> None:
        if len(self._where) >= _MAX_ROUTES:
            self._where.clear()  # only failed commits leave routes behind
        self._where[delivery_id] = partition

    def partition_of(self, settlement: Settlement) -> int:
        """Where ``settlement`` is committed: its entry's, its claim's, else its team's."""
        if settlement.ack is not None:
            return split_entry(settlement.ack)[1]
        if settlement.dead_letter is not None:
            return split_entry(settlement.dead_letter.entry.id)[1]
        for flush in settlement.flushed:
            return group_partition(flush.group_id)
        ids = [record.id for record in settlement.records] + settlement.retries_done
        ids += [job.delivery_id for job, _ in settlement.retries]
        for delivery in ids:
            if delivery in self._where:
                return self._where[delivery]
        records = settlement.records + settlement.duplicates
        records += [item.record for item in settlement.grouped]
        for record in records:
            return partition_of(record.team_id, self.partitions)
        return 0

    def forget(self, settlement: Settlement) -> None:
        for record in settlement.records:
            self._where.pop(record.id, None)
        for delivery in settlement.retries_done:
            self._where.pop(delivery, None)


def group_partition(group_id: str) -> int:
    """A digest group's partition: its id ends ``@<k>`` from partition 1 on."""
    return split_entry(group_id)[1]


@dataclass(frozen=True, slots=True)
class _ScriptKeys(Keys):
    """A partition's keys as its commit script gets them: every one in its slot.

    The script is handed the channel states' key with the others; the global
    one would make a cluster refuse the call (keys in two slots). From
    partition 1 on the script never writes it (``_for_partition`` takes the
    disables out), so this in-slot name is passed and left untouched.
    """

    @property
    def channel_state(self) -> str:
        return f"{self.tag}:channels"


class PartitionedCommitter(Committer):
    """``Committer.commit`` for several partitions: one script call per partition touched.

    Each settlement belongs to one partition, so what one settlement changes
    is still atomic with its XACK. Two differences from one partition:

    - Digest group ids get the partition's suffix (``<gid>@<k>``, k >= 1): a
      global subscription's digests are per partition (its events' teams
      live in several), and their ids, numbered per partition, must not meet.
    - Channel states (410 Gone) are global: from partition 1 on they are
      written right after the commit, not inside the script (which may run
      on another node). A crash in between only means the next 410 disables
      the channel again.
    """

    def __init__(
        self, redis: aioredis.Redis, keys: Keys, group: str, ttl: float, partitions: int
    ) -> None:
        super().__init__(redis, keys.partition(0), group, ttl)
        self.redis = redis
        self.routes = Routes(partitions)
        self.parts = [Committer(redis, keys.partition(0), group, ttl)]
        self.parts += [
            Committer(redis, _ScriptKeys(keys.prefix, part), group, ttl)
            for part in range(1, partitions)
        ]

    async def commit(self, settlements: Sequence[Settlement], now: float) -> None:
        batches: dict[int, list[Settlement]] = {}
        for settlement in settlements:
            batches.setdefault(self.routes.partition_of(settlement), []).append(settlement)
        disable: list[Any] = []
        for part, batch in batches.items():
            if part:
                batch = [self._for_partition(settlement, part, disable) for settlement in batch]
            await self.parts[part].commit(batch, now)
            for settlement in batch:
                self.routes.forget(settlement)
        if disable:
            async with translated("disable channels"):
                await self.redis.hset(self.keys.channel_state, mapping=dict(disable))

    def _for_partition(self, settlement: Settlement, part: int, disable: list[Any]) -> Settlement:
        changes: dict[str, Any] = {}
        if settlement.ack is not None:
            changes["ack"] = split_entry(settlement.ack)[0]
        if settlement.grouped:
            changes["grouped"] = [
                dataclasses.replace(item, group_id=qualified(item.group_id, part))
                for item in settlement.grouped
            ]
        if settlement.disable:
            disable += [(name, orjson.dumps(state.to_dict())) for name, state in settlement.disable]
            changes["disable"] = []
        return dataclasses.replace(settlement, **changes) if changes else settlement


def delivery_store(
    redis: aioredis.Redis, keys: Keys, ttl: float = 7 * 86400, partitions: int = 1
) -> DeliveryStore:
    """The records of every partition: the plain store when there is one."""
    if partitions > 1:
        return PartitionedStore(redis, keys, ttl, partitions)
    return DeliveryStore(redis, keys, ttl)


def queues(
    redis: aioredis.Redis, keys: Keys, ttl: float, committer: Committer
) -> tuple[DeliveryStore, RetryQueue, GroupQueue]:
    """The worker's records, retry schedule and digest groups, matching its committer."""
    if not isinstance(committer, PartitionedCommitter):
        store = DeliveryStore(redis, keys, ttl)
        return store, RetryQueue(redis, keys, ttl), GroupQueue(redis, keys)
    parts, routes = len(committer.parts), committer.routes
    return (
        PartitionedStore(redis, keys, ttl, parts),
        PartitionedRetries(redis, keys, ttl, parts, routes),
        PartitionedGroups(redis, keys, parts, routes),
    )


class PartitionedStore(DeliveryStore):
    """Delivery records of every partition; channel states are global (partition 0's keys)."""

    def __init__(
        self, redis: aioredis.Redis, keys: Keys, ttl: float = 7 * 86400, partitions: int = 1
    ) -> None:
        super().__init__(redis, keys.partition(0), ttl)
        self.parts = [DeliveryStore(redis, part, ttl) for part in keys.partitions(partitions)]

    async def get(self, record_id: str, *, history: bool = True) -> DeliveryRecord | None:
        for part in self.parts:
            found = await part.get(record_id, history=history)
            if found is not None:
                return found
        return None

    async def current(self, ids: Sequence[str]) -> dict[str, DeliveryRecord]:
        focus = SCREEN_PARTITION.get()
        if focus is not None:
            return await self.parts[focus].current(ids)
        found: dict[str, DeliveryRecord] = {}
        for got in await asyncio.gather(*(part.current(ids) for part in self.parts)):
            found.update(got)
        return found

    async def query(self, **filters: Any) -> list[DeliveryRecord]:
        """``DeliveryStore.query`` in every partition, merged newest first."""
        limit = int(filters.get("limit", 50))
        out: list[DeliveryRecord] = []
        for part in self.parts:
            out += await part.query(**filters)
        out.sort(key=lambda record: record.updated_at, reverse=True)
        return out[:limit]

    async def latest_per_channel(
        self, channels: Collection[str], *, scan_limit: int = 20_000
    ) -> dict[str, DeliveryRecord]:
        latest: dict[str, DeliveryRecord] = {}
        for part in self.parts:
            found = await part.latest_per_channel(channels, scan_limit=scan_limit)
            for name, record in found.items():
                if name not in latest or record.updated_at > latest[name].updated_at:
                    latest[name] = record
        return latest

    async def prune_index(self, now: float | None = None) -> int:
        return sum([await part.prune_index(now) for part in self.parts])


class PartitionedRetries(RetryQueue):
    """Due retries of every partition, each noted in ``routes`` for its commit."""

    def __init__(
        self, redis: aioredis.Redis, keys: Keys, ttl: float, partitions: int, routes: Routes
    ) -> None:
        super().__init__(redis, keys.partition(0), ttl)
        self.parts = [RetryQueue(redis, part, ttl) for part in keys.partitions(partitions)]
        self.routes = routes
        self._next = 0  # the partition claimed from first, in turn, so none starves

    async def claim(self, now: float, lease: float, count: int) -> list[RetryJob]:
        jobs: list[RetryJob] = []
        for step in range(len(self.parts)):
            if len(jobs) >= count:
                break
            part = (self._next + step) % len(self.parts)
            for job in await self.parts[part].claim(now, lease, count - len(jobs)):
                self.routes.note(job.delivery_id, part)
                jobs.append(job)
        self._next = (self._next + 1) % len(self.parts)
        return jobs

    async def due_count(self, now: float) -> int:
        return sum([await part.due_count(now) for part in self.parts])

    async def next_due(self) -> float | None:
        due = [found for part in self.parts if (found := await part.next_due()) is not None]
        return min(due, default=None)


class PartitionedGroups(GroupQueue):
    """Due digests of every partition (group ids carry their partition, see the committer)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, partitions: int, routes: Routes) -> None:
        super().__init__(redis, keys.partition(0))
        self.parts = [GroupQueue(redis, part) for part in keys.partitions(partitions)]
        self.routes = routes

    async def claim(self, now: float, lease: float, count: int) -> list[DueGroup]:
        due: list[DueGroup] = []
        for part, queue in enumerate(self.parts):
            if len(due) < count:
                for group in await queue.claim(now, lease, count - len(due)):
                    self.routes.note(group.digest_id, part)
                    due.append(group)
        return due

    async def due_count(self, now: float) -> int:
        return sum([await part.due_count(now) for part in self.parts])

    async def next_due(self, group_id: str) -> float | None:
        return await self.parts[group_partition(group_id)].next_due(group_id)
