"""From work taken on to its XACK: send through dispatch, settle in the store.

An entry (or a due retry) goes forward through three steps, each written
below in that order:

1. ``take``: the entry is in flight from when it is taken; an intake task
   decodes and matches the read batch (``Work``) while the reader reads
   again (read batches one after the other, in order); the batch is
   screened (one MGET of its targets' records: a delivery already
   ``delivered`` is noted as a duplicate, not sent again), then a task sends
   it (``Dispatcher.send``). Work with nothing to send skips this step.
2. ``_sent``: the task's done callback hands the ``Settlement`` on. A
   cancelled or crashed send settles nothing: the entry stays pending (a
   retry stays leased) for a later try.
3. ``_commit_queued``: one committer task writes every settlement queued
   meanwhile in one script call (group commit), XACK included. A failing
   commit is logged, never raised; its entries stay pending.

Duplicates in flight together: within one worker, the first work to take a
delivery owns it until its settlement is committed; a later work with the
same delivery waits for that record and then decides as the screen does.
Across workers two entries of one event can still both be sent when both are
in flight at once (at least once, never lost); the second commit then
overwrites the first's record, both saying delivered.

The send task is ``Dispatcher.send`` itself and the hand-over a plain
callback, not a wrapper coroutine per entry: on the no-op benchmark that
wrapper and a commit per entry cost a third of the throughput.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence

import structlog

from eventbus.brokers.base import Broker
from eventbus.brokers.redis_streams import StreamEntry
from eventbus.errors import BrokerError

from .aftercommit import AfterCommit
from .dispatch import Dispatcher, Target, Work
from .metrics import Metrics
from .store import (
    Committer,
    DeliveryRecord,
    DeliveryStatus,
    DeliveryStore,
    GroupFlush,
    RetryJob,
    Settlement,
)

__all__ = ["Pipeline"]

log = structlog.get_logger("eventbus.worker")

_COMMIT_BATCH = 256


class Pipeline:
    """Work in flight (at most ``limit`` entries and retries), sent concurrently."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        committer: Committer,
        store: DeliveryStore,
        streams: Broker,
        *,
        limit: int,
        consumer: str,
        metrics: Metrics,
        clock: Callable[[], float],
    ) -> None:
        self.dispatcher = dispatcher
        self.committer = committer
        self.store = store
        self.streams = streams
        self.limit = limit
        self.consumer = consumer
        self.metrics = metrics
        self.clock = clock
        self.after = AfterCommit(
            dispatcher, streams, consumer=consumer, metrics=metrics, clock=clock
        )
        self.processed = 0  # entries and retries committed
        # Stream entry ids and delivery ids taken on and not yet settled, and
        # the tasks of those still sending.
        self._keys: set[str] = set()
        # Delivery id -> key of the work sending it (one per delivery here),
        # the ids each key owns, and futures of works waiting for an outcome.
        self._owners: dict[str, str] = {}
        self._owned: dict[str, list[str]] = {}
        self._waiters: dict[str, asyncio.Future[DeliveryRecord | None]] = {}
        self._sending: set[asyncio.Task[Settlement]] = set()
        self._queue: list[tuple[str, Settlement]] = []
        self._committer: asyncio.Task[None] | None = None
        # Read batches taken on and not yet decoded, and the task decoding them.
        self._intake: list[Sequence[StreamEntry]] = []
        self._taking: asyncio.Task[None] | None = None
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return len(self._keys)

    def holds(self, key: str) -> bool:
        """Whether ``key`` (an entry id or a delivery id) is taken and not yet settled."""
        return key in self._keys

    async def room(self, stopping: asyncio.Event) -> int:
        """Free in-flight slots (at least 1), waiting while there are none."""
        while len(self._keys) >= self.limit and not stopping.is_set():
            self._room.clear()
            await self._room.wait()
        return max(1, self.limit - len(self._keys))

    def wake(self) -> None:
        """Let a reader waiting in ``room()`` look at ``stopping`` again."""
        self._room.set()

    async def idle(self) -> None:
        """Return once nothing is in flight."""
        await self._idle.wait()

    # -- 1. take -------------------------------------------------------------------

    async def take_entries(self, entries: Sequence[StreamEntry]) -> None:
        """Take a read batch on; it is decoded, matched, screened and sent meanwhile.

        The entries are in flight (``holds``, ``room``) when this returns, so
        the reader may read again while the intake task decodes and screens
        them: its next read's round trip overlaps that work. Entries are
        taken in the order they were read; the batches read while the intake
        was busy are taken together.
        """
        if not entries:
            return
        self.metrics.events_consumed.inc(len(entries))
        fresh = []
        for entry in entries:
            if entry.id in self._keys:
                continue  # in flight already (read again): that one settles it
            self._keys.add(entry.id)
            fresh.append(entry)
        if not fresh:
            return
        self._idle.clear()
        self._intake.append(fresh)
        if self._taking is None or self._taking.done():
            self._taking = asyncio.create_task(self._take_queued(), name="eventbus-intake")

    async def _take_queued(self) -> None:
        while self._intake:
            # Every batch read meanwhile, screened together: one MGET for all
            # of them (at 2,000 events/s a read brings one or two entries).
            entries = [entry for batch in self._intake for entry in batch]
            self._intake.clear()
            try:
                await self._take_now(entries)
            except Exception:  # a bug; _take let them go, they stay pending and are reclaimed
                log.exception("intake.crashed", entries=len(entries))
            except BaseException:  # cancelled (a forced stop): what waits stays pending too
                for waiting in self._intake:
                    for entry in waiting:
                        self._release(entry.id)
                self._intake.clear()
                raise

    async def _take_now(self, entries: Sequence[StreamEntry]) -> None:
        taken: list[tuple[str, Work]] = []
        for entry in entries:
            try:
                work = self.dispatcher.entry_work(entry)
            except Exception:  # a bug; the entry stays pending and is reclaimed
                log.exception("dispatch.crashed", key=entry.id)
                self._release(entry.id)
                continue
            taken.append((entry.id, work))
        await self._take(taken)

    async def take_retries(self, jobs: Sequence[RetryJob]) -> None:
        """Start due retries (screened like entries: one done meanwhile is not sent)."""
        taken = [
            (job.delivery_id, self.dispatcher.retry_work(job))
            for job in jobs
            # one still in flight here past its lease: that one settles it
            if job.delivery_id not in self._keys
        ]
        # A retried alert notification is still about its transition.
        await self.dispatcher.router.alerts.restore([work for _, work in taken])
        await self._take(taken)

    async def take_digests(self, due: Sequence[tuple[RetryJob, GroupFlush]]) -> None:
        """Start digests of claimed groups: sent as retries, each commit ending its flush."""
        taken = []
        for job, flush in due:
            if job.delivery_id in self._keys:
                continue  # still sending here past its lease: that one settles it
            work = self.dispatcher.retry_work(job)
            work.settlement.flushed.append(flush)
            taken.append((job.delivery_id, work))
        await self._take(taken)

    async def take_notices(self, works: Sequence[tuple[str, Work]]) -> None:
        """Start notifications of alert timers (``consumers.alert_timers``), screened too."""
        await self._take([(key, work) for key, work in works if key not in self._keys])

    async def _take(self, taken: Sequence[tuple[str, Work]]) -> None:
        """Screen works and start them; each is in flight until its settlement is committed.

        Screening is one MGET of the records of every target of the batch: a
        delivery already ``delivered`` is not sent again (``Dispatcher.screen``).
        A delivery in flight here is owned by the first work that took it; a
        later work with the same delivery waits for its outcome (``_after_owners``).
        """
        if not taken:
            return
        self._idle.clear()
        waits = []
        for key, work in taken:
            self._keys.add(key)
            waits.append(self._own(key, work))
        ids = [did for key, _ in taken for did in self._owned.get(key, ())]
        try:
            stored = await self.store.current(ids)
        except BrokerError as exc:
            # Fail open: sending again is a duplicate at worst, never a loss.
            log.warning("dedupe.lookup_failed", works=len(taken), error=str(exc))
            stored = {}
        except BaseException:  # cancelled (shutdown) or a bug: all stay pending
            for key, _ in taken:
                self._release(key)
            raise
        for key, work in taken:
            owned = self._owned.get(key)
            if owned and stored:
                found = {did: stored[did] for did in owned if did in stored}
                if found:
                    self._screen(key, work, found)
        await self._decide(taken)
        for (key, work), waiting in zip(taken, waits, strict=True):
            self._start(key, work, waiting)

    async def _decide(self, taken: Sequence[tuple[str, Work]]) -> None:
        """The routing stages that read shared state (cooldowns, grouping), for the batch."""
        try:
            await self.dispatcher.router.decide([work for _, work in taken], self.clock())
        except BaseException:  # cancelled (shutdown) or a bug: all stay pending
            for key, _ in taken:
                self._release(key)
            raise

    def _own(self, key: str, work: Work) -> list[Target]:
        """Own the deliveries of ``work`` nobody here owns; the others it waits for."""
        waiting = []
        for target in work.targets:
            if target.id in self._owners:
                waiting.append(target)
            else:
                self._owners[target.id] = key
                self._owned.setdefault(key, []).append(target.id)
        return waiting

    def _screen(self, key: str, work: Work, found: Mapping[str, DeliveryRecord | None]) -> None:
        self.dispatcher.screen(work, found)
        for did, record in found.items():
            if record is not None and record.status is DeliveryStatus.DELIVERED:
                # Nothing more can change it here: who waits on it may go on.
                self._owned[key].remove(did)
                self._free(did, record)

    def _start(self, key: str, work: Work, waiting: list[Target]) -> None:
        """Send ``work`` (after the owners of ``waiting`` settled); in flight until committed."""
        if waiting:
            task = asyncio.create_task(self._after_owners(key, work, waiting))
        elif work.targets:
            task = asyncio.create_task(self.dispatcher.send(work))
        else:
            self._settle(key, work.settlement)
            return
        self._sending.add(task)
        task.add_done_callback(functools.partial(self._sent, key))

    async def _after_owners(self, key: str, work: Work, waiting: list[Target]) -> Settlement:
        """Send ``work`` once no other work here holds the deliveries of ``waiting``.

        Each waits for the committed record of its owner: delivered, it is a
        duplicate; anything else (or no record: the owner's commit failed
        or it was cancelled), it is sent. Ownership is taken for all of them
        at once, only when all are free, so two works never wait on each other.
        """
        latest: dict[str, DeliveryRecord | None] = {}
        while busy := [target.id for target in waiting if target.id in self._owners]:
            futures = [self._outcome(did) for did in busy]
            await asyncio.wait(futures)  # not cancelled with this task: others share them
            latest.update(zip(busy, (future.result() for future in futures), strict=True))
        for target in waiting:
            self._owners[target.id] = key
            self._owned.setdefault(key, []).append(target.id)
        self._screen(key, work, latest)
        return await self.dispatcher.send(work)

    def _outcome(self, did: str) -> asyncio.Future[DeliveryRecord | None]:
        future = self._waiters.get(did)
        if future is None:
            future = self._waiters[did] = asyncio.get_running_loop().create_future()
        return future

    def _free(self, did: str, outcome: DeliveryRecord | Settlement | None) -> None:
        """``did`` is no longer sent here; who waits for it gets its committed record."""
        del self._owners[did]
        future = self._waiters.pop(did, None)
        if future is None:
            return
        if isinstance(outcome, Settlement):
            outcome = next((found for found in outcome.records if found.id == did), None)
        future.set_result(outcome)

    # -- 2. sent -------------------------------------------------------------------

    def _sent(self, key: str, task: asyncio.Task[Settlement]) -> None:
        self._sending.discard(task)
        if task.cancelled():
            self._release(key)
            return
        exc = task.exception()
        if exc is not None:
            log.error("dispatch.crashed", key=key, exc_info=exc)
            self._release(key)
            return
        self._settle(key, task.result())

    def _settle(self, key: str, settlement: Settlement) -> None:
        self._queue.append((key, settlement))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name="eventbus-commit")

    # -- 3. commit -----------------------------------------------------------------

    async def _commit_queued(self) -> None:
        while self._queue:
            batch = self._queue[:_COMMIT_BATCH]
            del self._queue[:_COMMIT_BATCH]
            committed = False
            try:
                await self.commit([settlement for _, settlement in batch])
                committed = True
            except BrokerError as exc:
                # Not acked: the entries stay pending and are reclaimed later;
                # retries stay leased and are claimed again.
                log.warning("commit.failed", entries=len(batch), error=str(exc))
            except Exception:
                log.exception("commit.crashed", entries=len(batch))
            else:
                self.processed += len(batch)
            finally:
                for key, settlement in batch:
                    self._release(key, settlement if committed else None)

    async def commit(self, settlements: Sequence[Settlement]) -> None:
        """Record outcomes, schedule retries, dead-letter and XACK in one atomic step."""
        await self.committer.commit(settlements, self.clock())
        # Successes alone may wait for a later commit while more work is in flight.
        last = not self._queue and len(self._keys) <= len(settlements)
        await self.after.committed(settlements, last=last)

    def _release(self, key: str, committed: Settlement | None = None) -> None:
        """``key`` is settled (``committed``) or left pending: free what it owned."""
        for did in self._owned.pop(key, ()):
            self._free(did, committed)
        self._keys.discard(key)
        self._room.set()
        if not self._keys:
            self._idle.set()

    # -- stopping ------------------------------------------------------------------

    async def finish(self, grace: float) -> None:
        """Let sends finish within ``grace`` seconds (cancel the rest), then the last commits."""
        if self._taking is not None and not self._taking.done():
            # what was read is started first, so the grace below covers its sends
            _, late_intake = await asyncio.wait([self._taking], timeout=grace)
            for taking in late_intake:
                taking.cancel()
                await asyncio.gather(taking, return_exceptions=True)
        if self._sending:
            log.info("worker.draining", in_flight=len(self._keys), timeout_s=grace)
            _, late = await asyncio.wait(set(self._sending), timeout=grace)
            for sending in late:
                sending.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
                log.warning("worker.drain_timeout", left_pending=len(late))
        while self._committer is not None and not self._committer.done():
            await asyncio.gather(self._committer, return_exceptions=True)
        await self.after.finish()

    def abandon(self) -> None:
        """Cancel every send (a forced stop); their entries stay pending."""
        if self._taking is not None:
            self._taking.cancel()
        for sending in self._sending:
            sending.cancel()
        self.after.cancel()
        log.warning("worker.abandoned", in_flight=len(self._sending))
