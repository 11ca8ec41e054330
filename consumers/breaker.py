"""The per-channel circuit breaker: stop sending to a receiver that keeps failing.

A channel's circuit opens when at least ``breaker.min_attempts`` attempts in
``breaker.window`` failed at a rate of ``breaker.failure_ratio`` or more, or
``breaker.consecutive`` failed in a row. While it is open, deliveries to it
are rescheduled without an attempt (as when rate limited: their retry
schedule does not advance) until ``breaker.cooldown`` is over; then exactly
one worker's delivery goes through as a probe (half-open). Its success closes
the circuit; its failure re-opens it with the cooldown doubled, up to
``breaker.max_cooldown``. A channel failing continuously for
``breaker.disable_after`` is disabled as for 410 Gone and the operator event
``eventbus.channel.disabled`` goes out. The state lives in Redis
(``consumers.store.breaker``), shared by all workers.

Why this shape:

- Decisions read a per-worker cache (``views``): for a closed circuit the hot
  path is one dict lookup (``blocked``). Only a delivery to a circuit that is
  not closed and whose cooldown is over asks Redis (the ``claim`` script,
  which lets exactly one caller probe), so that costs one call per channel
  per cooldown, not one per delivery.
- Outcomes are counted by one small script (``flush``, called by the
  pipeline right after a commit), not folded into the commit script. The
  breaker is advisory: if a crash falls between the two calls, a few counts
  are lost and opening comes a little later, but no delivery is
  lost or sent twice, so it needs no atomicity with the records. Keeping it
  apart leaves the commit script (fixed keys, the hottest code) untouched,
  and it costs one round trip per flush, none when nothing was attempted.
  The script returns each touched circuit, which refreshes this worker's
  cache with its own outcomes and everyone else's.
- Successes on closed circuits change no decision, only counts: after a
  commit, ``flush_due`` lets them wait up to ``FLUSH_EVERY`` (the dashboard's
  minute counters are that late at most) unless a failure was noted, a
  circuit is not closed, or nothing else is in flight; the pipeline flushes
  what waited when that time is up. A run of successes is one counted item
  (``(n, "")``), so waiting costs no memory per attempt. On the no-op
  benchmark the call per commit was about 3 % of the worker's time.
- Other workers' changes also arrive with the periodic refresh (every 10 s,
  with the channel states); a worker that has not seen an opening yet sends
  a few more attempts, which is harmless.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import structlog

from eventbus.durations import format_duration
from eventbus.errors import BrokerError
from eventbus.settings import BreakerSettings, Settings

from .channels.base import OutcomeClass, SendResult
from .metrics import Metrics
from .store import BreakerStore, Circuit, CircuitState, Outcomes

__all__ = ["FLUSH_EVERY", "Breaker", "breaker_rules"]

log = structlog.get_logger("eventbus.breaker")

# How long a worker trusts "half-open, someone else probes" before asking again.
_RECHECK = 5.0
# Outcomes kept for the next flush while Redis is unreachable, per channel
# (a run of successes is one).
_PENDING_MAX = 1000
# How long successes on closed circuits may wait to be counted (``flush_due``).
FLUSH_EVERY = 1.0


def breaker_rules(settings: Settings) -> dict[str, BreakerSettings]:
    """Each channel's breaker settings: ``breaker:`` with the channel's own fields over it."""
    base = settings.breaker
    return {
        spec.name: base.model_copy(update=spec.breaker.model_dump(exclude_unset=True))
        if spec.breaker is not None
        else base
        for spec in settings.channels
    }


class Breaker:
    """This worker's view of every channel's circuit, and the outcomes not yet counted."""

    def __init__(
        self,
        settings: Settings,
        store: BreakerStore | None = None,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.views: dict[str, Circuit] = {}
        # Per channel, in order: (n, "") a run of n successes, (0, error) a failure.
        self._pending: dict[str, list[tuple[int, str]]] = {}
        # Something noted since the last flush that a decision depends on.
        self._urgent = False
        self._flushed_at = clock()
        self.reconfigure(settings)

    def reconfigure(self, settings: Settings) -> None:
        self.rules = breaker_rules(settings)
        # A probe longer than this is taken as lost (its worker died): another may probe.
        self.lease = settings.consumer.delivery_timeout * 2 + 30

    # -- the hot path ------------------------------------------------------------

    def blocked(self, channel: str) -> bool:
        """Whether ``channel``'s circuit is not closed here (then ``admit`` decides)."""
        view = self.views.get(channel)
        return view is not None and view.state is not CircuitState.CLOSED

    async def admit(self, channel: str) -> float | None:
        """``None``: send now (closed, or this worker probes); else seconds to hold it back."""
        view = self.views.get(channel)
        now = self.clock()
        if view is None or self.store is None:
            return None
        if now < view.until:
            return _hold(view, now)
        try:
            verdict, till = await self.store.claim(channel, now, self.lease)
        except BrokerError as exc:  # fail open: a send is better than a stall
            log.warning("circuit.claim_failed", channel=channel, error=str(exc))
            return None
        if verdict == CircuitState.CLOSED:
            self._set(channel, Circuit())
            return None
        if verdict == "probe":
            view.state, view.until = CircuitState.HALF_OPEN, now + _RECHECK
            self._set(channel, view)
            log.info("circuit.probe", channel=channel)
            return None
        view.state = CircuitState(verdict)
        view.until = till if view.state is CircuitState.OPEN else min(till, now + _RECHECK)
        self._set(channel, view)
        return _hold(view, now)

    def observe(self, channel: str, result: SendResult) -> None:
        """Note the outcome of an attempt (counted by the next ``flush``)."""
        rule = self.rules.get(channel)
        if rule is None or not rule.enabled or result.outcome is OutcomeClass.RATE_LIMITED:
            return
        pending = self._pending.setdefault(channel, [])
        if result.outcome is OutcomeClass.DELIVERED:
            if self.blocked(channel):
                self._urgent = True  # it closes the circuit
            if pending and pending[-1][0]:
                pending[-1] = (pending[-1][0] + 1, "")
            elif len(pending) < _PENDING_MAX:
                pending.append((1, ""))
            return
        self._urgent = True
        if len(pending) < _PENDING_MAX:
            pending.append((0, result.error or f"HTTP {result.status}"))

    @property
    def waiting(self) -> bool:
        """Whether outcomes were noted that no flush has counted yet."""
        return bool(self._pending)

    # -- after each commit, and periodically ---------------------------------------

    async def flush_due(self, *, last: bool) -> list[tuple[str, str]]:
        """``flush()``, unless only successes on closed circuits wait and were counted
        less than ``FLUSH_EVERY`` ago while more work is in flight (``last`` false)."""
        if not self._urgent and not last and self.clock() - self._flushed_at < FLUSH_EVERY:
            return []
        return await self.flush()

    async def flush(self) -> list[tuple[str, str]]:
        """Count the outcomes noted since the last flush; returns channels disabled now.

        Each is ``(name, reason)``; the script has written their disabled
        ``ChannelState`` already. A failure to reach Redis is logged and the
        outcomes are kept for the next flush."""
        if not self._pending or self.store is None:
            return []
        pending, self._pending = self._pending, {}
        urgent, self._urgent = self._urgent, False
        self._flushed_at = self.clock()
        batches = [
            _outcomes(name, results, self.rules[name])
            for name, results in pending.items()
            if name in self.rules
        ]
        try:
            circuits = await self.store.record(batches, self.clock())
        except BrokerError as exc:
            log.warning("circuit.record_failed", channels=len(batches), error=str(exc))
            for name, results in pending.items():
                kept = self._pending.setdefault(name, [])
                kept[:0] = results[: _PENDING_MAX - len(kept)]
            self._urgent = self._urgent or urgent
            return []
        disabled = []
        for name, circuit in circuits.items():
            self._set(name, circuit)
            self._tell(name, circuit)
            if circuit.event == "disabled":
                reason = _outcomes(name, (), self.rules[name]).disable_reason
                disabled.append((name, reason + (circuit.last_error or "")))
        return disabled

    async def refresh(self) -> None:
        """Read every configured channel's circuit (other workers' changes)."""
        if self.store is None:
            return
        windows = {name: rule.window for name, rule in self.rules.items()}
        found = await self.store.read(windows, self.clock())
        for name in self.rules:
            self._set(name, found.get(name) or Circuit())

    def _set(self, channel: str, circuit: Circuit) -> None:
        self.views[channel] = circuit
        if self.metrics is not None:
            self.metrics.circuit(channel, circuit.state.gauge)

    @staticmethod
    def _tell(channel: str, circuit: Circuit) -> None:
        if circuit.event in ("opened", "reopened"):
            log.warning(
                "circuit.opened",
                channel=channel,
                cooldown_s=circuit.cooldown,
                consecutive_failures=circuit.consecutive,
                failure_ratio=circuit.failure_ratio,
                last_error=circuit.last_error,
                reopened=circuit.event == "reopened",
            )
        elif circuit.event == "closed":
            log.info("circuit.closed", channel=channel)
        elif circuit.event == "disabled":
            log.warning("channel.disabled", channel=channel, reason="circuit breaker")


def _hold(view: Circuit, now: float) -> float:
    # A little jitter, so what was held back does not all come due at once.
    wait = max(view.until - now, 0.0)
    return wait + random.uniform(0, min(5.0, 0.1 * wait + 0.5))


def _outcomes(
    channel: str, results: list[tuple[int, str]] | tuple[()], rule: BreakerSettings
) -> Outcomes:
    span = rule.disable_after or 0.0
    return Outcomes(
        channel,
        results,
        min_attempts=rule.min_attempts,
        failure_ratio=rule.failure_ratio,
        consecutive=rule.consecutive,
        cooldown=rule.cooldown,
        max_cooldown=rule.max_cooldown,
        disable_after=span,
        window=rule.window,
        disable_reason=(
            f"every attempt failed for {format_duration(span)} (breaker.disable_after); "
            "last error: "
        ),
    )
