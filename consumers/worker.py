"""The consumer worker: read, dispatch, record + ack, retry, reclaim, tidy up.

One worker is one consumer in the group. Its loops run under a supervisor
that restarts a crashed loop with capped exponential backoff, so a Redis
outage is survived, not fatal. In-flight work is bounded by
``consumer.max_in_flight``: the reader asks only for as many entries as there
is room for, so a slow channel slows reading, not memory.

Stopping (``stop()``, SIGTERM in the CLI) stops reading, waits up to
``consumer.drain_timeout`` for in-flight deliveries, commits what finished and
cancels the rest, which stays pending for another worker to reclaim.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Mapping

import redis.asyncio as aioredis
import structlog

from eventbus.brokers.redis_streams import RedisStreams, StreamEntry
from eventbus.catalog import OPERATOR_CHANNEL_DISABLED, OPERATOR_TEAM
from eventbus.envelope import Event, Outcome, Resource
from eventbus.errors import BrokerError
from eventbus.keys import Keys
from eventbus.settings import Settings

from .channels.base import Channel
from .commit import Committer
from .deadletters import DeadLetters
from .dispatch import DeadLetterOrder, Dispatcher, Plan, Work
from .health import Health
from .maintenance import Maintenance
from .metrics import Metrics
from .records import DeliveryStore
from .retries import RetryQueue

__all__ = ["Worker"]

log = structlog.get_logger("eventbus.worker")

_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 30.0
_COMMIT_BATCH = 256


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        redis: aioredis.Redis,
        channels: Mapping[str, Channel],
        metrics: Metrics | None = None,
        health: Health | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config = settings.consumer
        self.keys = Keys(settings.broker.prefix)
        self.redis = redis
        self.metrics = metrics or Metrics()
        self.health = health or Health()
        self.clock = clock
        self.name = self.config.consumer_name()
        self.group = self.config.group
        self.streams = RedisStreams(redis, self.keys)
        self.store = DeliveryStore(redis, self.keys, self.config.record_ttl)
        self.retries = RetryQueue(redis, self.keys, self.config.record_ttl)
        self.dead_letters = DeadLetters(redis, self.keys)
        self.committer = Committer(redis, self.keys, self.group, self.config.record_ttl)
        self.maintenance = Maintenance(redis, self.keys)
        self.dispatcher = Dispatcher(settings, channels, metrics=self.metrics, clock=clock)
        self._stopping = asyncio.Event()
        # Entries and retries taken on and not yet committed (stream entry id
        # or delivery id), and the tasks of those still sending.
        self._in_flight_ids: set[str] = set()
        self._tasks: set[asyncio.Task[Plan]] = set()
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._loops: list[asyncio.Task[None]] = []
        self.processed = 0  # entries and retries committed by this worker
        self._commit_queue: list[tuple[str, Plan]] = []
        self._committer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Worker(group={self.group!r}, consumer={self.name!r})"

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Create the group if needed and load channel states."""
        await self.streams.ensure_group(self.group)
        await self._refresh_channel_states()
        self.health.set_ready(None)
        log.info(
            "worker.started",
            group=self.group,
            consumer=self.name,
            stream=self.keys.events,
            subscriptions=len(self.settings.subscriptions),
        )

    async def run(self) -> None:
        """Run until ``stop()``; then drain in-flight work within the drain timeout."""
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "read": self._read_loop,
            "retry": self._retry_loop,
            "reclaim": self._reclaim_loop,
            "maintenance": self._maintenance_loop,
        }
        self._loops = [
            asyncio.create_task(self._supervise(name, loop), name=f"eventbus-{name}")
            for name, loop in loops.items()
        ]
        try:
            await self._stopping.wait()
        finally:
            await self._shutdown()

    def stop(self) -> None:
        if not self._stopping.is_set():
            log.info("worker.stopping", in_flight=len(self._in_flight_ids))
            self._stopping.set()
            self._room.set()

    @property
    def in_flight(self) -> int:
        """Entries and retries taken on and not yet committed."""
        return len(self._in_flight_ids)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def reconfigure(self, settings: Settings, channels: Mapping[str, Channel]) -> None:
        """Apply a reloaded configuration; in-flight deliveries finish with the old one."""
        self.settings = settings
        self.dispatcher.reconfigure(settings, channels)

    async def drain(self, *, include_pending: bool = True) -> int:
        """Process until idle: no new entries, no due retries, nothing in flight.

        For tests, benchmarks and one-shot runs (like arq's burst mode). Reads
        overlap with sending and committing, as in ``run()``. Returns how many
        entries and retries it processed.
        """
        done = 0
        if include_pending:
            done += await self._drain_own_pending()
        batch = self.config.batch_size
        while True:
            room = min(await self._wait_for_room(), batch)
            entries = await self.streams.read(self.group, self.name, room, None)
            jobs = await self.retries.claim(self.clock(), self._lease, room)
            if not entries and not jobs:
                if not self._in_flight_ids:
                    return done
                await self._idle.wait()
                continue
            self._take_entries(entries)
            for job in jobs:
                self._take(job.delivery_id, self.dispatcher.retry_work(job))
            done += len(entries) + len(jobs)

    # -- loops -------------------------------------------------------------------

    async def _supervise(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(failures - 1, 10))
                level = log.warning if isinstance(exc, BrokerError) else log.error
                level(
                    "loop.crashed",
                    loop=name,
                    error=str(exc),
                    error_type=type(exc).__name__,
                    restart_in_s=delay,
                    failures=failures,
                )
                if isinstance(exc, BrokerError):
                    self.health.set_ready(f"broker unavailable: {exc}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            else:
                failures = 0

    async def _read_loop(self) -> None:
        await self.streams.ensure_group(self.group)
        await self._drain_own_pending()
        self.health.set_ready(None)
        block_ms = int(self.config.block * 1000)
        while not self._stopping.is_set():
            self.health.beat("read", allowance=self.config.block + self.config.drain_timeout + 30)
            room = await self._wait_for_room()
            if self._stopping.is_set():
                return
            entries = await self.streams.read(
                self.group, self.name, min(room, self.config.batch_size), block_ms
            )
            self._take_entries(entries)

    async def _drain_own_pending(self) -> int:
        """Entries this consumer received before a restart but never acked."""
        count = 0
        while True:
            entries = await self.streams.read(
                self.group, self.name, self.config.batch_size, None, pending=True
            )
            entries = [e for e in entries if e.id not in self._in_flight_ids]
            if not entries:
                return count
            log.info("worker.pending_recovered", count=len(entries))
            await self._process_claimed(entries)
            await self._idle.wait()
            count += len(entries)

    async def _retry_loop(self) -> None:
        while not self._stopping.is_set():
            self.health.beat("retry", allowance=self.config.retry_poll + 60)
            room = await self._wait_for_room()
            jobs = await self.retries.claim(self.clock(), self._lease, min(room, 100))
            for job in jobs:
                self._take(job.delivery_id, self.dispatcher.retry_work(job))
            if not jobs:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.config.retry_poll)

    async def _reclaim_loop(self) -> None:
        while not self._stopping.is_set():
            self.health.beat("reclaim", allowance=self.config.claim_interval + 60)
            await self.reclaim_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.claim_interval)

    async def reclaim_once(self) -> int:
        """Claim entries idle past ``consumer.claim_idle`` (from dead consumers).

        Entries received more than ``consumer.max_receives`` times go to the
        dead letters; the others are processed like new ones.
        """
        cursor, total = "0-0", 0
        min_idle = int(self.config.claim_idle * 1000)
        while not self._stopping.is_set():
            cursor, entries, deleted = await self.streams.autoclaim(
                self.group, self.name, min_idle, cursor, self.config.batch_size
            )
            if deleted:
                await self._ack_deleted(deleted)
            entries = [e for e in entries if e.id not in self._in_flight_ids]
            if entries:
                log.info("worker.reclaimed", count=len(entries))
                await self._process_claimed(entries)
                total += len(entries)
            if cursor == "0-0":
                break
        return total

    async def _maintenance_loop(self) -> None:
        last_trim = 0.0
        interval = min(10.0, self.config.trim_interval)
        while not self._stopping.is_set():
            self.health.beat("maintenance", allowance=interval + 120)
            await self._refresh_channel_states()
            for g in await self.maintenance.group_stats():
                if g.name == self.group:
                    self.metrics.stream_pending.labels(g.name).set(g.pending)
                    if g.lag is not None:
                        self.metrics.stream_lag.labels(g.name).set(g.lag)
            self.metrics.retries_due.set(await self.retries.due_count(self.clock()))
            if time.monotonic() - last_trim >= self.config.trim_interval:
                last_trim = time.monotonic()
                trimmed = await self.maintenance.trim(self.config.retention_min_age)
                removed = await self.maintenance.remove_dead_consumers(
                    self.group, self.config.dead_consumer_idle, self.name
                )
                pruned = await self.store.prune_index()
                if trimmed or removed or pruned:
                    log.info(
                        "maintenance.done",
                        trimmed=trimmed,
                        consumers_removed=removed,
                        records_pruned=pruned,
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)

    # -- processing --------------------------------------------------------------

    @property
    def _lease(self) -> float:
        return self.config.delivery_timeout * 2 + 30

    async def _process_claimed(self, entries: list[StreamEntry]) -> None:
        counts = await self.streams.delivery_counts(self.group, [e.id for e in entries])
        for entry in entries:
            if counts.get(entry.id, 1) > self.config.max_receives:
                plan = Plan(ack=entry.id)
                plan.dead_letter = DeadLetterOrder(
                    entry,
                    "max_receives",
                    f"received {counts[entry.id]} times (consumer.max_receives="
                    f"{self.config.max_receives}) without being acknowledged",
                )
                await self._commit([plan])
            else:
                await self._wait_for_room()
                self._take_entries([entry])

    def _take_entries(self, entries: list[StreamEntry]) -> None:
        if entries:
            self.metrics.events_consumed.inc(len(entries))
        for entry in entries:
            try:
                work = self.dispatcher.entry_work(entry)
            except Exception:  # a bug; the entry stays pending and is reclaimed
                log.exception("dispatch.crashed", key=entry.id)
                continue
            self._take(entry.id, work)

    def _take(self, key: str, work: Work) -> None:
        """Start one entry or retry; it is in flight until its plan is committed.

        Work with nothing to send (a dead letter, no matching subscription)
        goes straight to the commit queue; the rest gets a task that sends.
        """
        self._in_flight_ids.add(key)
        self._idle.clear()
        if not work.targets:
            self._queue_commit(key, work.plan)
            return
        task = asyncio.create_task(self.dispatcher.send(work))
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._sent, key))

    def _sent(self, key: str, task: asyncio.Task[Plan]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            self._settled(key)  # not committed: pending (or leased) for a later try
            return
        exc = task.exception()
        if exc is not None:
            log.error("dispatch.crashed", key=key, exc_info=exc)
            self._settled(key)
            return
        self._queue_commit(key, task.result())

    def _settled(self, key: str) -> None:
        self._in_flight_ids.discard(key)
        self._room.set()
        if not self._in_flight_ids:
            self._idle.set()

    async def _wait_for_room(self) -> int:
        """Free in-flight slots (at least 1), waiting while there are none."""
        limit = self.config.max_in_flight
        while len(self._in_flight_ids) >= limit and not self._stopping.is_set():
            self._room.clear()
            await self._room.wait()
        return max(1, limit - len(self._in_flight_ids))

    def _queue_commit(self, key: str, plan: Plan) -> None:
        """Commit ``plan`` together with whatever else finishes meanwhile.

        One committer task turns everything queued into one atomic script
        call (group commit): one round trip for many entries instead of one
        each. Entries count as in flight until their commit is done.
        """
        self._commit_queue.append((key, plan))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._run_committer(), name="eventbus-commit")

    async def _run_committer(self) -> None:
        while self._commit_queue:
            batch = self._commit_queue[:_COMMIT_BATCH]
            del self._commit_queue[:_COMMIT_BATCH]
            try:
                await self._commit([plan for _, plan in batch])
            except BrokerError as exc:
                # Not acked: the entries stay pending and are reclaimed later;
                # retries stay leased and are claimed again.
                log.warning("commit.failed", entries=len(batch), error=str(exc))
            except Exception:
                log.exception("commit.crashed", entries=len(batch))
            else:
                self.processed += len(batch)
            finally:
                for key, _ in batch:
                    self._settled(key)

    async def _commit(self, plans: list[Plan]) -> None:
        """Record outcomes, schedule retries, dead-letter and XACK in one atomic step."""
        await self.committer.commit(plans, self.clock())
        for plan in plans:
            for name, state in plan.disable:
                await self._announce_disabled(name, state.reason or "")
            order = plan.dead_letter
            if order is not None:
                self.metrics.dead_letters.labels(order.reason).inc()
                log.warning(
                    "entry.dead_lettered",
                    entry_id=order.entry.id,
                    reason=order.reason,
                    error=order.error[:300],
                )

    async def _announce_disabled(self, channel: str, reason: str) -> None:
        """Publish the operator event ``eventbus.channel.disabled`` (team ``eventbus``)."""
        event = Event(
            event=OPERATOR_CHANNEL_DISABLED,
            outcome=Outcome.ERROR,
            team_id=OPERATOR_TEAM,
            resource=Resource(type="channel", id=channel),
            error=reason[:1000] or "disabled",
            metadata={"consumer": self.name},
        )
        try:
            await self.streams.publish(event.team_id, event.to_json())
        except BrokerError as exc:
            self.metrics.publish_errors.inc()
            log.warning("operator_event.failed", event_type=event.event, error=str(exc))

    async def _ack_deleted(self, ids: list[str]) -> None:
        # XAUTOCLAIM reports pending entries that were trimmed/deleted from the
        # stream; they can never be processed, so record them as dead letters.
        plans = []
        for entry_id in ids:
            plan = Plan(ack=entry_id)
            plan.dead_letter = DeadLetterOrder(
                StreamEntry(entry_id, {}),
                "deleted",
                "entry was deleted from the stream while pending",
            )
            plans.append(plan)
        await self._commit(plans)

    async def _refresh_channel_states(self) -> None:
        self.dispatcher.channel_states = await self.store.channel_states()

    async def _shutdown(self) -> None:
        try:
            for task in self._loops:
                task.cancel()
            await asyncio.gather(*self._loops, return_exceptions=True)
            if self._tasks:
                log.info(
                    "worker.draining",
                    in_flight=len(self._in_flight_ids),
                    timeout_s=self.config.drain_timeout,
                )
                _, pending = await asyncio.wait(set(self._tasks), timeout=self.config.drain_timeout)
                for sending in pending:
                    sending.cancel()
                if pending:
                    await asyncio.gather(*pending, return_exceptions=True)
                    log.warning("worker.drain_timeout", left_pending=len(pending))
            while self._committer is not None and not self._committer.done():
                await asyncio.gather(self._committer, return_exceptions=True)
        except asyncio.CancelledError:
            # Forced stop (a second signal): abandon in-flight deliveries before
            # their clients are closed under them, so no attempt is recorded
            # as failed by our own shutdown. Their entries stay pending.
            for sending in self._tasks:
                sending.cancel()
            log.warning("worker.abandoned", in_flight=len(self._tasks))
            raise
        log.info("worker.stopped", consumer=self.name)
