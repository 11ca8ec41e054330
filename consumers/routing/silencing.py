"""Silences: operator-set mutes with an expiry (placeholder: none match yet)."""

from __future__ import annotations

from ..work import Work

__all__ = ["SilenceBook"]


class SilenceBook:
    """The silences in force, as every worker sees them."""

    def apply(self, work: Work, now: float) -> None:
        """Settle the targets of ``work`` that a silence matches as ``silenced``."""
