"""The consumer worker: its loops (read, retry, reclaim, maintenance) and lifecycle.

What happens to an entry once read (dispatch, send, commit + XACK) is
``consumers.pipeline``; what is written where is ``consumers.store``. At
start the worker moves an older key layout (``store.migrate_layout``).

One worker is one consumer in the group. Its loops run under a supervisor
that restarts a crashed loop with capped exponential backoff, so a Redis
outage is survived, not fatal. In-flight work is bounded by
``consumer.max_in_flight``: the reader asks only for as many entries as there
is room for, so a slow channel slows reading, not memory. The retry loop
also claims due digests of grouping subscriptions (``consumers.flushing``).

With ``broker.partitions`` N > 1 the worker reads every partition: one
reader per partition sharing the one in-flight budget (each asks for at
most ``batch_size`` within the room left, so at most N batches over it),
entry ids qualified with their partition (``eventbus.keys.qualified``) so
they are unique in the pipeline; reclaim, retries, digests and maintenance
go over every partition (``consumers.store.partitioned``).

Stopping (``stop()``, SIGTERM in the CLI) stops reading, waits up to
``consumer.drain_timeout`` for in-flight deliveries, commits what finished and
cancels the rest, which stays pending for another worker to reclaim.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping

import redis.asyncio as aioredis
import structlog

from eventbus.brokers.base import Broker
from eventbus.brokers.redis_streams import RedisStreams, StreamEntry
from eventbus.errors import BrokerError
from eventbus.keys import Keys
from eventbus.settings import Settings

from .alert_timers import AlertTimers
from .breaker import Breaker
from .channels.base import Channel
from .console.propagation import ConsoleFeed
from .dispatch import Dispatcher
from .flushing import Flusher
from .health import Health
from .metrics import Metrics
from .pipeline import Pipeline
from .reading import StreamReading
from .routing import AlertBook, Cooldowns, Router, SilenceBook
from .store import (
    BreakerStore,
    Committer,
    DeadLetters,
    Maintenance,
    SilenceStore,
    fold_legacy_stream,
    migrate_layout,
)
from .store.partitioned import PartitionedCommitter, queues

__all__ = ["Worker"]

log = structlog.get_logger("eventbus.worker")

_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 30.0


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
        console: ConsoleFeed | None = None,
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
        self.partitions = parts = settings.broker.partitions
        self.streams = RedisStreams(redis, self.keys, partitions=parts)
        self.readers = self.streams.parts()  # one reader per partition
        self.committer = self._committer()
        self.store, self.retries, groups = queues(
            redis, self.keys, self.config.record_ttl, self.committer
        )
        self.dead_letters = DeadLetters(redis, self.keys, parts)
        self.maintenances = [Maintenance(redis, part) for part in self.keys.partitions(parts)]
        self.silences = SilenceBook(SilenceStore(redis, self.keys))
        alerts = AlertBook(redis, self.keys)
        router = Router(
            settings, silences=self.silences, cooldowns=Cooldowns(redis, self.keys), alerts=alerts
        )
        breaker = Breaker(
            settings, BreakerStore(redis, self.keys), metrics=self.metrics, clock=clock
        )
        self.dispatcher = Dispatcher(
            settings, channels, metrics=self.metrics, clock=clock, router=router, breaker=breaker
        )
        self.pipeline = Pipeline(
            self.dispatcher,
            self.committer,
            self.store,
            self._broker(),
            limit=self.config.max_in_flight,
            consumer=self.name,
            metrics=self.metrics,
            clock=clock,
        )
        self.flusher = Flusher(groups, self.pipeline, clock)
        self.alert_timers = AlertTimers(redis, alerts, self.pipeline, clock)
        self._stopping = asyncio.Event()
        self.reading = StreamReading(self.readers, self.pipeline, settings, self.name, self.health)
        self.reading.stopping = self._stopping
        self._loops: list[asyncio.Task[None]] = []
        # API-defined channels and subscriptions, merged into the YAML's on every change.
        self.console = console
        if console is not None and console.apply is None:
            console.apply = self.reconfigure

    def __repr__(self) -> str:
        return f"{type(self).__name__}(group={self.group!r}, consumer={self.name!r})"

    # What a RabbitMQ-mode worker (``consumers.amqp_worker``) does otherwise; chosen
    # once here, so the Redis path has no per-entry branch.

    def _committer(self) -> Committer:
        """Records and XACK in one script call (invariant 2), one per partition."""
        ttl = self.config.record_ttl
        if self.partitions > 1:
            return PartitionedCommitter(self.redis, self.keys, self.group, ttl, self.partitions)
        return Committer(self.redis, self.keys, self.group, ttl)

    def _broker(self) -> Broker:
        """Where operator events (``eventbus.channel.disabled``) are published."""
        return self.streams

    def _source(self) -> dict[str, object]:
        """What the worker reads, for its start-up line."""
        return {"stream": self.keys.events, "partitions": self.partitions}

    async def _read_batch(self, count: int) -> list[StreamEntry]:
        """New entries for ``drain()`` (of every partition, in turn), without waiting."""
        return await self.reading.read_batch(count)

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Move an older key layout, create the group if needed, load channel states."""
        if self.settings.broker.kind == "redis":
            await self.streams.check_partitions()  # the stored partition count
        await migrate_layout(self.redis, self.keys.prefix, group=self.group)
        await self.pipeline.streams.ensure_group(self.group)
        await self._refresh_channel_states()
        await self.silences.load()
        if self.console is not None:
            await self.console.load()
        self.health.set_ready(None)
        log.info(
            "worker.started",
            group=self.group,
            consumer=self.name,
            **self._source(),
            subscriptions=len(self.settings.subscriptions),
        )

    async def run(self) -> None:
        """Run until ``stop()``; then drain in-flight work within the drain timeout."""
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "read": self._read_loop,
            "retry": self._retry_loop,
            "reclaim": self._reclaim_loop,
            "maintenance": self._maintenance_loop,
            "silences": self._silence_loop,
        }
        if self.console is not None:
            loops["console"] = self._console_loop
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
            log.info("worker.stopping", in_flight=self.pipeline.in_flight)
            self._stopping.set()
            self.pipeline.wake()

    @property
    def in_flight(self) -> int:
        """Entries and retries taken on and not yet committed."""
        return self.pipeline.in_flight

    @property
    def processed(self) -> int:
        """Entries and retries committed by this worker."""
        return self.pipeline.processed

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
            room = min(await self._room(), batch)
            entries = await self._read_batch(room)
            jobs = await self.retries.claim(self.clock(), self._lease, room)
            digests = await self.flusher.flush_due(self._lease, room - len(entries) - len(jobs))
            digests += await self.alert_timers.fire_due(
                self._lease, room - len(entries) - len(jobs) - digests
            )
            if not entries and not jobs and not digests:
                if not self.pipeline.in_flight:
                    return done
                await self.pipeline.idle()
                continue
            await self.pipeline.take_entries(entries)
            await self.pipeline.take_retries(jobs)
            done += len(entries) + len(jobs) + digests

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
        await self.reading.read_loop()

    async def _drain_own_pending(self) -> int:
        """Entries this consumer received before a restart but never acked."""
        return await self.reading.drain_pending()

    async def _retry_loop(self) -> None:
        while not self._stopping.is_set():
            self.health.beat("retry", allowance=self.config.retry_poll + 60)
            room = await self._room()
            jobs = await self.retries.claim(self.clock(), self._lease, min(room, 100))
            await self.pipeline.take_retries(jobs)
            digests = await self.flusher.flush_due(self._lease, min(room, 100) - len(jobs))
            digests += await self.alert_timers.fire_due(self._lease, min(room, 100) - digests)
            if not jobs and not digests:
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
        return await self.reading.reclaim_once()

    async def _silence_loop(self) -> None:
        allowance = self.silences.refresh + 60
        await self.silences.watch(self._stopping, lambda: self.health.beat("silences", allowance))

    async def _console_loop(self) -> None:
        assert self.console is not None
        allowance = self.console.refresh + 60
        await self.console.watch(self._stopping, lambda: self.health.beat("console", allowance))

    async def _maintenance_loop(self) -> None:
        last_trim = 0.0
        interval = min(10.0, self.config.trim_interval)
        while not self._stopping.is_set():
            self.health.beat("maintenance", allowance=interval + 120)
            await self._refresh_channel_states()
            # An old publisher during a rolling upgrade still writes the old stream.
            await fold_legacy_stream(
                self.redis, self.keys.prefix, self.group, claim_idle=self.config.claim_idle
            )
            await self._measure_lag()
            self.metrics.retries_due.set(await self.retries.due_count(self.clock()))
            self.metrics.open_alerts(await self.alert_timers.open_counts())
            if time.monotonic() - last_trim >= self.config.trim_interval:
                last_trim = time.monotonic()
                trimmed, removed = 0, []
                for maintenance in self.maintenances:
                    trimmed += await maintenance.trim(self.config.retention_min_age)
                    removed += await maintenance.remove_dead_consumers(
                        self.group, self.config.dead_consumer_idle, self.name
                    )
                pruned = await self.store.prune_index()
                pruned += await self.alert_timers.prune(self.clock())
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

    async def _room(self) -> int:
        return await self.pipeline.room(self._stopping)

    async def _measure_lag(self) -> None:
        for part, maintenance in enumerate(self.maintenances):
            for stats in await maintenance.group_stats():
                if stats.name == self.group:
                    self.metrics.stream_pending.labels(stats.name, str(part)).set(stats.pending)
                    if stats.lag is not None:
                        self.metrics.stream_lag.labels(stats.name, str(part)).set(stats.lag)

    async def _refresh_channel_states(self) -> None:
        self.dispatcher.channel_states = await self.store.channel_states()
        await self.dispatcher.breaker.refresh()

    async def _shutdown(self) -> None:
        try:
            for task in self._loops:
                task.cancel()
            await asyncio.gather(*self._loops, return_exceptions=True)
            await self.pipeline.finish(self.config.drain_timeout)
        except asyncio.CancelledError:
            # Forced stop (a second signal): abandon in-flight deliveries before
            # their clients are closed under them, so no attempt is recorded
            # as failed by our own shutdown. Their entries stay pending.
            self.pipeline.abandon()
            raise
        log.info("worker.stopped", consumer=self.name)
