"""Cooldowns: at most one notification per key per window (placeholder: none yet)."""

from __future__ import annotations

from collections.abc import Sequence

from ..work import Work

__all__ = ["Cooldowns"]


class Cooldowns:
    """Cooldown windows shared by every worker."""

    async def apply(self, works: Sequence[Work], now: float) -> None:
        """Settle targets inside their subscription's cooldown window as ``suppressed``."""
