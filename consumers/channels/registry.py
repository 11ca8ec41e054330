"""Channel types by name, and building channels from their configuration.

Each channel module exposes ``create(spec, deps) -> Channel``, raising
``ChannelConfigError`` for an unusable definition; it makes no connection, so
``eventbus config check`` validates a channel by creating it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Protocol, cast

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec, Settings

from .base import Channel, ChannelDeps

__all__ = ["CHANNEL_TYPES", "build_channel", "build_channels", "channel_problems"]

# type name -> module under consumers.channels
CHANNEL_TYPES: dict[str, str] = {
    "console": "console",
    "webhook": "webhook",
    "telegram": "telegram",
    "discord": "discord",
    "slack": "slack",
    "smtp": "smtp",
    "ntfy": "ntfy",
    "gotify": "gotify",
    "teams": "teams",
    "matrix": "matrix",
    "pushover": "pushover",
    "mattermost": "mattermost",
    "googlechat": "googlechat",
    "generic": "generic",
}


class _Factory(Protocol):
    def __call__(self, spec: ChannelSpec, deps: ChannelDeps) -> Channel: ...


def _factory(kind: str) -> _Factory:
    module_name = CHANNEL_TYPES.get(kind)
    if module_name is None:
        known = ", ".join(sorted(CHANNEL_TYPES))
        raise ChannelConfigError(f"unknown channel type {kind!r}: use one of {known}")
    try:
        module = importlib.import_module(f"consumers.channels.{module_name}")
    except ModuleNotFoundError:
        raise ChannelConfigError(
            f"channel type {kind!r} is not available in this build"
        ) from None
    return cast(_Factory, module.create)


def build_channel(spec: ChannelSpec, deps: ChannelDeps) -> Channel:
    """The channel ``spec`` describes; raises ``ChannelConfigError``."""
    if not spec.kind:
        raise ChannelConfigError(f"channel {spec.name!r} has neither 'type' nor 'url'")
    return _factory(spec.kind)(spec, deps)


def build_channels(settings: Settings, deps: ChannelDeps) -> dict[str, Channel]:
    return {spec.name: build_channel(spec, deps) for spec in settings.channels}


def channel_problems(settings: Settings) -> Iterable[tuple[int, str, str]]:
    """(index, message, fix) for each channel that cannot be built."""
    client = httpx.AsyncClient()
    deps = ChannelDeps(http=client, security=settings.security)
    for index, spec in enumerate(settings.channels):
        if not spec.kind:
            continue  # reported by eventbus.config
        try:
            build_channel(spec, deps)
        except ChannelConfigError as exc:
            yield index, f"channel {spec.name!r}: {exc}", ""
