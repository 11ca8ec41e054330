"""One delivery per channel per event (placeholder: nothing merged yet)."""

from __future__ import annotations

from ..work import Work

__all__ = ["merge"]


def merge(work: Work, now: float) -> None:
    """Settle targets whose channel an earlier subscription delivers to as ``merged``."""
