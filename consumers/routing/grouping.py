"""Grouping: events of one group folded into one digest (placeholder: none yet)."""

from __future__ import annotations

from collections.abc import Sequence

from ..work import Work

__all__ = ["Grouper"]


class Grouper:
    """Puts targets of grouping subscriptions into their group's digest."""

    def apply(self, works: Sequence[Work], now: float) -> None:
        """Settle targets of subscriptions with ``group_by`` as ``grouped``."""
