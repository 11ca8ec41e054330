"""The worker in RabbitMQ mode (``broker.kind: rabbitmq``): events come from a queue.

Everything but reading and settling is the Redis-mode ``Worker``'s: dispatch,
the pipeline, retries, digests, alert timers, silences and the console all
keep their state in Redis. What differs:

- reading: ``RabbitMQ.consume`` on the group's quorum queue (prefetch =
  ``consumer.max_in_flight``); each message is handed to the pipeline as a
  ``StreamEntry`` whose id is the broker's handle for it.
- settling: ``SettlingCommitter`` writes the records in the same script as
  on Redis, without the XACK, and only then acks through the broker (record
  first, then ack: a crash in between redelivers, and the stable delivery id
  makes the second write idempotent). Invalid messages are published to the
  dead-letter queue with the reason (confirmed), then acked. A failing ack
  is logged, not raised.
- no reclaim of other consumers' messages and no stream trimming: RabbitMQ
  redelivers what a lost channel held at once, and its delivery limit
  dead-letters poison messages. What this worker received but could not
  settle (a failed commit, a crashed dispatch) it hands back after
  ``consumer.claim_idle``, as Redis mode reclaims it.
- lag: ``eventbus_stream_lag`` is the queue's ready messages,
  ``eventbus_stream_pending`` those this worker holds unacked, and
  ``eventbus_queue_depth`` their sum.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence

import redis.asyncio as aioredis
import structlog

from eventbus.brokers.base import Broker, Received
from eventbus.brokers.rabbitmq import RabbitMQ
from eventbus.brokers.redis_streams import StreamEntry
from eventbus.errors import BrokerError
from eventbus.keys import Keys
from eventbus.settings import Settings

from .channels.base import Channel
from .console.propagation import ConsoleFeed
from .health import Health
from .metrics import Metrics
from .store import Committer, Settlement
from .worker import Worker

__all__ = ["AmqpWorker", "SettlingCommitter", "entries_of"]

log = structlog.get_logger("eventbus.worker")


def entries_of(received: Sequence[Received]) -> list[StreamEntry]:
    """Broker messages as the pipeline takes them (the handle as the entry id)."""
    return [
        StreamEntry(r.id, {} if r.payload is None else {b"payload": r.payload}) for r in received
    ]


class SettlingCommitter(Committer):
    """Records in Redis first, then the broker settles: ack, or dead-letter and ack."""

    def __init__(
        self, redis: aioredis.Redis, keys: Keys, group: str, ttl: float, broker: RabbitMQ
    ) -> None:
        super().__init__(redis, keys, group, ttl)
        self.broker = broker

    async def commit(self, settlements: Sequence[Settlement], now: float) -> None:
        records = [
            dataclasses.replace(s, ack=None, dead_letter=None)
            if s.ack is not None or s.dead_letter is not None
            else s
            for s in settlements
        ]
        await super().commit(records, now)
        await self.settle(settlements)

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        """Ack what is recorded; dead letters go to the DLQ (confirmed) before their ack."""
        acks: list[str] = []
        for settlement in settlements:
            order = settlement.dead_letter
            if settlement.ack is None:
                continue
            if order is None:
                acks.append(settlement.ack)
                continue
            message = Received(settlement.ack, order.entry.payload, 0)
            try:
                await self.broker.dead_letter(self.group, message, order.reason, order.error)
            except BrokerError as exc:
                # Not acked: handed back after claim_idle, judged again.
                log.warning("dead_letter.failed", reason=order.reason, error=str(exc))
        await self.broker.ack(self.group, acks)  # a failing ack is logged there


class AmqpWorker(Worker):
    """A ``Worker`` reading the group's RabbitMQ queue (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis: aioredis.Redis,
        broker: RabbitMQ,
        channels: Mapping[str, Channel],
        metrics: Metrics | None = None,
        health: Health | None = None,
        clock: Callable[[], float] = time.time,
        console: ConsoleFeed | None = None,
    ) -> None:
        self.broker = broker
        # handle -> when it was taken, for what is held but no longer in the pipeline
        self._taken: dict[str, float] = {}
        super().__init__(
            settings,
            redis=redis,
            channels=channels,
            metrics=metrics,
            health=health,
            clock=clock,
            console=console,
        )

    async def start(self) -> None:
        await super().start()
        await self.measure()  # the lag is on /metrics from the start

    def _committer(self) -> Committer:
        return SettlingCommitter(
            self.redis, self.keys, self.group, self.config.record_ttl, self.broker
        )

    def _broker(self) -> Broker:
        return self.broker

    def _source(self) -> dict[str, object]:
        return {"queue": self.broker.topology.queue(self.group)}

    async def _consume(self, count: int, block: float | None) -> list[StreamEntry]:
        received = await self.broker.consume(self.group, self.name, count, block)
        now = time.monotonic()
        for message in received:
            self._taken[message.id] = now
        return entries_of(received)

    async def _read_batch(self, count: int) -> list[StreamEntry]:
        # Deliveries arrive on their own: while idle, give them a moment.
        block = None if self.pipeline.in_flight else min(self.config.block, 1.0)
        return await self._consume(count, block)

    async def drain(self, *, include_pending: bool = True) -> int:
        """Process until idle and the queue has no message ready (see ``Worker.drain``).

        An empty read does not mean an empty queue here (deliveries are pushed,
        and a lost consumer's come back a moment later), so ask the queue, and
        look at what was delivered here meanwhile.
        """
        done = 0
        while True:
            done += await super().drain(include_pending=include_pending)
            ready, _consumers = await self.broker.backlog(self.group)
            if not ready and not self.broker.waiting(self.group, self.name):
                return done

    async def _read_loop(self) -> None:
        await self.broker.ensure_group(self.group)
        self.health.set_ready(None)
        while not self._stopping.is_set():
            self.health.beat("read", allowance=self.config.block + self.config.drain_timeout + 30)
            room = await self._room()
            if self._stopping.is_set():
                return
            entries = await self._consume(min(room, self.config.batch_size), self.config.block)
            await self.pipeline.take_entries(entries)

    async def _drain_own_pending(self) -> int:
        return 0  # RabbitMQ redelivered them when the old channel closed

    async def reclaim_once(self) -> int:
        """Hand back messages held past ``claim_idle`` that nothing here is working on."""
        held = self.broker.holding(self.group, self.name)
        self._taken = {handle: self._taken.get(handle, time.monotonic()) for handle in held}
        cutoff = time.monotonic() - self.config.claim_idle
        idle = [h for h, at in self._taken.items() if at <= cutoff and not self.pipeline.holds(h)]
        if idle:
            log.info("worker.returned", count=len(idle))
            await self.broker.requeue(self.group, idle)
        return len(idle)

    async def _maintenance_loop(self) -> None:
        last_prune = 0.0
        interval = min(10.0, self.config.trim_interval)
        while not self._stopping.is_set():
            self.health.beat("maintenance", allowance=interval + 120)
            await self._refresh_channel_states()
            await self.measure()
            if time.monotonic() - last_prune >= self.config.trim_interval:
                last_prune = time.monotonic()
                pruned = await self.store.prune_index()
                pruned += await self.alert_timers.prune(self.clock())
                if pruned:
                    log.info("maintenance.done", records_pruned=pruned)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)

    async def measure(self) -> None:
        """Set the lag gauges from the queue (and what this worker holds), retries, alerts."""
        ready, _consumers = await self.broker.backlog(self.group)
        held = len(self.broker.holding(self.group, self.name))
        self.metrics.stream_lag.labels(self.group, "0").set(ready)
        self.metrics.stream_pending.labels(self.group, "0").set(held)
        self.metrics.queue_depth.labels(self.group).set(ready + held)
        self.metrics.retries_due.set(await self.retries.due_count(self.clock()))
        self.metrics.open_alerts(await self.alert_timers.open_counts())

    async def _shutdown(self) -> None:
        try:
            await super()._shutdown()
        finally:
            # What is still unsettled goes back to the queue now, not when we disconnect.
            with contextlib.suppress(BrokerError):
                await self.broker.release(self.group, self.name)
