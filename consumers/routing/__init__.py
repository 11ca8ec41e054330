"""Routing: what happens between matching an event and sending it.

Matching (``eventbus.subscriptions``) picks the subscriptions of an event,
severity and ``where`` filters included. Routing then decides, per target,
in this order (each stage a module of this package):

1. ``silencing``: a silence an operator set matches -> ``silenced``;
2. ``merging``: another subscription already delivers this event to the
   same channel (the first in file order wins) -> ``merged``;
3. ``cooldown``: inside the subscription's cooldown window -> ``suppressed``;
4. ``grouping``: folded into a digest of its group -> ``grouped``;
5. ``alerts``: an alert event changes its alert (raise, touch, acknowledge,
   resolve); a transition the subscription does not notify of -> ``folded``.

A target a stage settles leaves the work with a record that says why
(``Work.unsent``); whatever is left is sent. Routing runs for stream entries
only: a due retry was routed when its entry was.

Every stage runs for a whole read batch at once (``decide``), after the
batch is screened for deliveries done already and before anything is sent:
a repeated or reclaimed event whose delivery is recorded keeps its record
(a silence added since does not turn ``delivered`` into ``silenced``).
Stages 1-2 read only this process's state (``route``, per work); stages
3-5 read or change state shared by every worker, in one round trip per
batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventbus.settings import Settings

from ..metrics import Metrics
from ..work import Work
from .alerts import AlertBook
from .cooldown import Cooldowns
from .grouping import Grouper
from .merging import merge
from .silencing import SilenceBook

__all__ = ["AlertBook", "Cooldowns", "Grouper", "Router", "SilenceBook"]


class Router:
    """The routing stages of one dispatcher, with the state they read."""

    def __init__(
        self,
        settings: Settings,
        *,
        silences: SilenceBook | None = None,
        cooldowns: Cooldowns | None = None,
        grouper: Grouper | None = None,
        alerts: AlertBook | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.silences = silences or SilenceBook()
        self.cooldowns = cooldowns or Cooldowns()
        self.grouper = grouper or Grouper()
        self.alerts = alerts or AlertBook()
        self.metrics = metrics  # counts each routed record (the dispatcher's, if not given)
        self.reconfigure(settings)

    def reconfigure(self, settings: Settings) -> None:
        self.settings = settings
        self.silences.reconfigure(settings)
        self.cooldowns.reconfigure(settings)
        self.grouper.reconfigure(settings)
        self.alerts.reconfigure(settings)
        self.kinds = {spec.name: spec.kind for spec in settings.channels}

    def route(self, work: Work, now: float) -> None:
        """Stages 1-2 for one screened work: silences, then one delivery per channel."""
        if work.event is None or not work.targets:
            return
        before = len(work.settlement.records)
        self.silences.apply(work, now)
        merge(work, now, self.kinds)
        self._count(work, before)

    async def decide(self, works: Sequence[Work], now: float) -> None:
        """Every stage for a screened batch; cooldowns are one round trip for all of it."""
        # Entries only (a due retry has no ack): a retry was routed as its entry.
        entries = [w for w in works if w.settlement.ack is not None]
        routed = [w for w in entries if w.targets]
        for work in routed:
            self.route(work, now)
        routed = [work for work in routed if work.targets]
        before = [len(work.settlement.records) for work in routed]
        if routed:
            await self.cooldowns.apply(routed, now)
            self.grouper.apply(routed, now)
        # Every alert event changes its alert, whatever was left to send of it.
        for transition in await self.alerts.apply(entries, now):
            if self.metrics is not None:
                self.metrics.alert_transition(transition.value)
        for work, count in zip(routed, before, strict=True):
            self._count(work, count)
            self._count_grouped(work)

    def _count(self, work: Work, before: int) -> None:
        """Count the routed records the stages added to ``work`` since ``before``."""
        if self.metrics is None:
            return
        for record in work.settlement.records[before:]:
            if record.status.routed:
                self.metrics.routed(record.subscription, record.status.value)

    def _count_grouped(self, work: Work) -> None:
        """Grouped records travel in the settlement's own section (the script names the digest)."""
        if self.metrics is None:
            return
        for folded in work.settlement.grouped:
            self.metrics.routed(folded.record.subscription, folded.record.status.value)
