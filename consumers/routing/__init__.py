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
"""

from __future__ import annotations

from eventbus.settings import Settings

from ..work import Work
from .merging import merge
from .silencing import SilenceBook

__all__ = ["Router", "SilenceBook"]


class Router:
    """The routing stages of one dispatcher, with the state they read."""

    def __init__(self, settings: Settings, *, silences: SilenceBook | None = None) -> None:
        self.silences = silences or SilenceBook()
        self.reconfigure(settings)

    def reconfigure(self, settings: Settings) -> None:
        self.settings = settings

    def route(self, work: Work, now: float) -> None:
        """Settle the targets of ``work`` that are not to be sent now."""
        if work.event is None or not work.targets:
            return
        self.silences.apply(work, now)
        merge(work, now)
