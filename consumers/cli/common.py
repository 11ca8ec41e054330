"""What the consumer commands share: settings checked as deeply as the daemon checks them."""

from __future__ import annotations

from eventbus.cli import EXIT_CONFIG, Context, fail
from eventbus.settings import Settings

from ..validation import channel_problems, subscription_problems

__all__ = ["checked_settings"]


def checked_settings(ctx: Context) -> Settings:
    """Settings with every channel built and every template compiled (exit 2 otherwise).

    Channels and subscriptions come from the YAML file: with no file and none
    defined in the environment, these commands have nothing to work on, which
    is said plainly instead of "OK, 0 channels".
    """
    settings = ctx.settings(
        channel_validator=channel_problems, subscription_validator=subscription_problems
    )
    if ctx.config_path is None and not settings.channels:
        fail(
            "no configuration file: channels and subscriptions are read from YAML; "
            "pass --config PATH (before or after the command) or set EVENTBUS_CONFIG",
            EXIT_CONFIG,
        )
    return settings
