"""The configuration checks that need the consumer side (channels, templates).

``eventbus.config.load_settings`` takes them as plug-ins so that the core
never imports ``consumers``; ``eventbus config check``, ``run`` and SIGHUP
reloads all pass both.
"""

from __future__ import annotations

from collections.abc import Iterable

from eventbus.settings import Settings

from .channels.registry import channel_problems
from .templates import template_problems

__all__ = ["channel_problems", "subscription_problems"]


def subscription_problems(settings: Settings) -> Iterable[tuple[int, str, str]]:
    """Templates that do not compile, per subscription index."""
    return template_problems(settings.subscriptions)
