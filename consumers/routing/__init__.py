"""Routing: what happens between matching an event and sending it.

Matching (``eventbus.subscriptions``) picks the subscriptions of an event,
severity and ``where`` filters included. Routing then decides, per target,
in this order (each stage a module of this package):

1. ``silencing``: a silence an operator set matches -> ``silenced``;
2. ``merging``: another subscription already delivers this event to the
   same channel (the first in file order wins) -> ``merged``;
3. ``cooldown``: inside the subscription's cooldown window -> ``suppressed``;
4. ``grouping``: folded into a digest of its group -> ``grouped``.

A target a stage settles leaves the work with a record that says why
(``Work.unsent``); whatever is left is sent. Routing runs for stream entries
only: a due retry was routed when its entry was.

Stages 1-2 read only this process's state and run as an entry is decoded
(``route``). Stages 3-4 read or change state shared by every worker, so
they run for a whole read batch at once, after it is screened for
deliveries done already (``decide``), before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventbus.settings import Settings

from ..work import Work
from .cooldown import Cooldowns
from .grouping import Grouper
from .merging import merge
from .silencing import SilenceBook

__all__ = ["Cooldowns", "Grouper", "Router", "SilenceBook"]


class Router:
    """The routing stages of one dispatcher, with the state they read."""

    def __init__(
        self,
        settings: Settings,
        *,
        silences: SilenceBook | None = None,
        cooldowns: Cooldowns | None = None,
        grouper: Grouper | None = None,
    ) -> None:
        self.silences = silences or SilenceBook()
        self.cooldowns = cooldowns or Cooldowns()
        self.grouper = grouper or Grouper()
        self.reconfigure(settings)

    def reconfigure(self, settings: Settings) -> None:
        self.settings = settings
        self.silences.reconfigure(settings)
        self.cooldowns.reconfigure(settings)
        self.grouper.reconfigure(settings)

    def route(self, work: Work, now: float) -> None:
        """Settle the targets of ``work`` that are not to be sent now."""
        if work.event is None or not work.targets:
            return
        self.silences.apply(work, now)
        merge(work, now)

    async def decide(self, works: Sequence[Work], now: float) -> None:
        """Stages 3-4 for a screened batch: cooldowns (shared state), then grouping."""
        # Entries only (a due retry has no ack): a retry was routed as its entry.
        routed = [w for w in works if w.settlement.ack is not None and w.targets]
        if not routed:
            return
        await self.cooldowns.apply(routed, now)
        self.grouper.apply(routed, now)
