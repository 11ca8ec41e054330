"""What the consumer commands share: settings checked as deeply as the daemon checks them."""

from __future__ import annotations

from eventbus.cli import Context
from eventbus.settings import Settings

from ..validation import channel_problems, subscription_problems

__all__ = ["checked_settings"]


def checked_settings(ctx: Context) -> Settings:
    """Settings with every channel built and every template compiled (exit 2 otherwise)."""
    return ctx.settings(
        channel_validator=channel_problems, subscription_validator=subscription_problems
    )
