"""Reading the streams: one reader per partition, own pending entries, reclaim.

Part of the worker (``consumers.worker``), apart so the worker's module
stays one idea. Entries of partition k >= 1 enter the pipeline with ids
qualified (``<id>@<k>``, ``eventbus.keys.qualified``): two streams can both
hold ``1700000000000-0``, and the pipeline keys its work by entry id. The
commit (``store.partitioned.PartitionedCommitter``) acks each on its stream.

The readers share the pipeline's in-flight budget: each asks for at most
``consumer.batch_size`` within the room left, so with N partitions at most
N batches more than ``consumer.max_in_flight`` are in memory at once.
"""

from __future__ import annotations

import asyncio

import structlog

from eventbus.brokers.redis_streams import RedisStreams, StreamEntry
from eventbus.keys import qualified, split_entry
from eventbus.settings import Settings

from .health import Health
from .pipeline import Pipeline
from .store import DeadLetterOrder, Settlement
from .store.partitioned import SCREEN_PARTITION

__all__ = ["StreamReading"]

log = structlog.get_logger("eventbus.worker")


class StreamReading:
    def __init__(
        self,
        readers: list[RedisStreams],
        pipeline: Pipeline,
        settings: Settings,
        name: str,
        health: Health,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.readers = readers
        self.pipeline = pipeline
        self.config = settings.consumer
        self.group = settings.consumer.group
        self.name = name
        self.health = health
        self.stopping = stopping or asyncio.Event()  # the worker's, set when it stops
        self._first = 0  # the partition read_batch() reads first

    async def read_loop(self) -> None:
        """One reader per partition; one failing stops the others (the supervisor restarts).

        The others are told to stop and get their current read's ``BLOCK`` to
        finish rather than being cancelled in it: a read cancelled while Redis
        blocks it was seen to hang the cancelled task (redis-py 8.1).
        """
        if len(self.readers) == 1:
            await self._read_partition(0)
            return
        halt = asyncio.Event()
        tasks = [
            asyncio.create_task(self._read_partition(part, halt), name=f"eventbus-read-{part}")
            for part in range(len(self.readers))
        ]
        watcher = asyncio.create_task(self._halt_on_stop(halt))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # the first failure, as the supervisor expects it
        finally:
            watcher.cancel()
            halt.set()
            self.pipeline.wake()  # a reader waiting for room looks at halt again
            _, late = await asyncio.wait(tasks, timeout=self.config.block + 5)
            for task in late:
                task.cancel()

    async def _halt_on_stop(self, halt: asyncio.Event) -> None:
        await self.stopping.wait()
        halt.set()
        self.pipeline.wake()

    async def _read_partition(self, part: int, halt: asyncio.Event | None = None) -> None:
        reader = self.readers[part]
        if len(self.readers) > 1:
            SCREEN_PARTITION.set(part)  # this task's own context: see store.partitioned
        await reader.ensure_group(self.group)
        await self._drain_partition(part)
        self.health.set_ready(None)
        block_ms = int(self.config.block * 1000)
        halt = halt or self.stopping  # one partition: the worker's stop only
        while not halt.is_set() and not self.stopping.is_set():
            self.health.beat("read", allowance=self.config.block + self.config.drain_timeout + 30)
            room = await self.pipeline.room(halt)
            if halt.is_set() or self.stopping.is_set():
                return
            entries = await reader.read(
                self.group, self.name, min(room, self.config.batch_size), block_ms
            )
            await self.pipeline.take_entries(_qualify(entries, part))

    async def drain_pending(self) -> int:
        """Entries this consumer received before a restart but never acked."""
        return sum([await self._drain_partition(k) for k in range(len(self.readers))])

    async def _drain_partition(self, part: int) -> int:
        count = 0
        while True:
            entries = await self.readers[part].read(
                self.group, self.name, self.config.batch_size, None, pending=True
            )
            entries = [e for e in entries if not self.pipeline.holds(qualified(e.id, part))]
            if not entries:
                return count
            log.info("worker.pending_recovered", count=len(entries), partition=part)
            await self._process_claimed(entries, part)
            await self.pipeline.idle()
            count += len(entries)

    async def read_batch(self, count: int) -> list[StreamEntry]:
        """New entries for ``drain()`` (of every partition, in turn), without waiting.

        Each call starts at the next partition, so a full one does not hold
        the others back.
        """
        out: list[StreamEntry] = []
        first, self._first = self._first, (self._first + 1) % len(self.readers)
        for step in range(len(self.readers)):
            part = (first + step) % len(self.readers)
            if len(out) < count:
                got = await self.readers[part].read(self.group, self.name, count - len(out), None)
                out += _qualify(got, part)
        return out

    async def reclaim_once(self) -> int:
        """Claim entries idle past ``consumer.claim_idle`` (from dead consumers).

        Entries received more than ``consumer.max_receives`` times go to the
        dead letters; the others are processed like new ones.
        """
        total = 0
        min_idle = int(self.config.claim_idle * 1000)
        for part, reader in enumerate(self.readers):
            cursor = "0-0"
            while not self.stopping.is_set():
                cursor, entries, deleted = await reader.autoclaim(
                    self.group, self.name, min_idle, cursor, self.config.batch_size
                )
                if deleted:
                    await self._ack_deleted(deleted, part)
                entries = [e for e in entries if not self.pipeline.holds(qualified(e.id, part))]
                if entries:
                    log.info("worker.reclaimed", count=len(entries), partition=part)
                    await self._process_claimed(entries, part)
                    total += len(entries)
                if cursor == "0-0":
                    break
        return total

    async def _process_claimed(self, entries: list[StreamEntry], part: int = 0) -> None:
        counts = await self.readers[part].delivery_counts(self.group, [e.id for e in entries])
        for entry in _qualify(entries, part):
            received = counts.get(split_entry(entry.id)[0], 1)
            if received > self.config.max_receives:
                error = (
                    f"received {received} times (consumer.max_receives="
                    f"{self.config.max_receives}) without being acknowledged"
                )
                dead = DeadLetterOrder(entry, "max_receives", error)
                await self.pipeline.commit([Settlement(ack=entry.id, dead_letter=dead)])
            else:
                await self.pipeline.room(self.stopping)
                await self.pipeline.take_entries([entry])

    async def _ack_deleted(self, ids: list[str], part: int = 0) -> None:
        # XAUTOCLAIM reports pending entries that were trimmed/deleted from the
        # stream; they can never be processed, so record them as dead letters.
        error = "entry was deleted from the stream while pending"
        await self.pipeline.commit(
            [
                Settlement(
                    ack=entry_id,
                    dead_letter=DeadLetterOrder(StreamEntry(entry_id, {}), "deleted", error),
                )
                for entry_id in (qualified(raw, part) for raw in ids)
            ]
        )


def _qualify(entries: list[StreamEntry], part: int) -> list[StreamEntry]:
    """Entries of partition ``part`` with ids unique across partitions."""
    if part == 0:
        return entries
    return [StreamEntry(qualified(entry.id, part), entry.fields) for entry in entries]
