"""What follows a group commit: the breaker counts the attempts, disabled channels are announced.

The circuit breaker counts attempts after the commit that recorded them
(``consumers.breaker``): at once when it has something to decide, else
successes alone wait for a later commit, at most ``FLUSH_EVERY``; a timer
counts what waited when no commit comes. A channel disabled by the breaker
or by a 410 Gone is announced with the operator event
``eventbus.channel.disabled`` (team ``eventbus``), and a dead-lettered entry
gets its warning line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import structlog

from eventbus.brokers.base import Broker
from eventbus.catalog import OPERATOR_CHANNEL_DISABLED, OPERATOR_TEAM
from eventbus.envelope import Event, Outcome, Resource
from eventbus.errors import BrokerError

from . import breaker as breaker_module
from .dispatch import Dispatcher
from .metrics import Metrics
from .store import ChannelState, Settlement

__all__ = ["AfterCommit"]

log = structlog.get_logger("eventbus.worker")


class AfterCommit:
    def __init__(
        self,
        dispatcher: Dispatcher,
        streams: Broker,
        *,
        consumer: str,
        metrics: Metrics,
        clock: Callable[[], float],
    ) -> None:
        self.dispatcher = dispatcher
        self.streams = streams
        self.consumer = consumer
        self.metrics = metrics
        self.clock = clock
        # Successes the breaker let wait are counted by then (``_count_late``).
        self._timer: asyncio.TimerHandle | None = None
        self._late: asyncio.Task[None] | None = None

    async def committed(self, settlements: Sequence[Settlement], *, last: bool) -> None:
        """After ``settlements`` were committed; ``last``: nothing else is in flight."""
        await self.count(last=last)
        for settlement in settlements:
            for name, state in settlement.disable:
                await self.announce_disabled(name, state.reason or "")
            order = settlement.dead_letter
            if order is not None:
                self.metrics.dead_letters.labels(order.reason).inc()
                log.warning(
                    "entry.dead_lettered",
                    entry_id=order.entry.id,
                    reason=order.reason,
                    error=order.error[:300],
                )

    async def count(self, *, last: bool) -> None:
        """Let the breaker count what it noted (``Breaker.flush_due``)."""
        breaker = self.dispatcher.breaker
        for name, reason in await breaker.flush_due(last=last):
            self.dispatcher.channel_states[name] = ChannelState(True, reason, self.clock())
            self.metrics.channels_disabled.inc()
            await self.announce_disabled(name, reason)
        if not breaker.waiting:
            self.cancel()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(breaker_module.FLUSH_EVERY, self._count_late)

    def _count_late(self) -> None:
        """What waited in the breaker is counted now, whether or not another commit came."""
        self._timer = None
        if self._late is None or self._late.done():
            self._late = asyncio.create_task(self._count_waiting(), name="eventbus-count")

    async def _count_waiting(self) -> None:
        try:
            await self.count(last=True)
        except Exception:  # a bug: the outcomes stay noted for the next commit
            log.exception("circuit.count_crashed")

    async def finish(self) -> None:
        """Count whatever still waits (the last commits are done)."""
        self.cancel()
        if self._late is not None:
            await asyncio.gather(self._late, return_exceptions=True)
        if self.dispatcher.breaker.waiting:
            await self._count_waiting()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def announce_disabled(self, channel: str, reason: str) -> None:
        """Publish the operator event ``eventbus.channel.disabled`` (team ``eventbus``)."""
        event = Event(
            event=OPERATOR_CHANNEL_DISABLED,
            outcome=Outcome.ERROR,
            team_id=OPERATOR_TEAM,
            resource=Resource(type="channel", id=channel),
            error=reason[:1000] or "disabled",
            metadata={"consumer": self.consumer},
        )
        try:
            await self.streams.publish(event.team_id, event.to_json())
        except BrokerError as exc:
            self.metrics.publish_errors.inc()
            log.warning("operator_event.failed", event_type=event.event, error=str(exc))
