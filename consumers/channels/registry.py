"""Channel types by name, and building channels from their configuration.

Each channel module exposes ``create(spec, deps) -> Channel``, raising
``ChannelConfigError`` for an unusable definition; it makes no connection, so
``eventbus config check`` validates a channel by creating it. Channels built
here come wrapped in their rate limiter (``consumers.ratelimit``) when they
have one, from ``rate_limit:`` in YAML or the provider's default.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any, Protocol, cast

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec, Settings

from .base import Channel, ChannelDeps

__all__ = [
    "CHANNEL_TYPES",
    "build_channel",
    "build_channels",
    "channel_problems",
    "create_channel",
]

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
        raise ChannelConfigError(f"channel type {kind!r} is not available in this build") from None
    return cast(_Factory, module.create)


def create_channel(spec: ChannelSpec, deps: ChannelDeps) -> Channel:
    """The bare channel ``spec`` describes, without rate limiting."""
    if not spec.kind:
        raise ChannelConfigError(f"channel {spec.name!r} has neither 'type' nor 'url'")
    if spec.type and spec.url is not None:
        scheme = spec.url.get_secret_value().split(":", 1)[0].lower().split("+", 1)[0]
        # http(s) URLs belong to the type (webhook, generic ...); a service
        # scheme such as discord:// must agree with the declared type.
        if scheme in CHANNEL_TYPES and scheme != spec.type:
            raise ChannelConfigError(
                f"channel {spec.name!r} has type {spec.type!r} but a {scheme}:// url: "
                "drop 'type' (the URL scheme sets it) or fix the URL"
            )
    return _factory(spec.kind)(spec, deps)


def build_channel(spec: ChannelSpec, deps: ChannelDeps, **limiter: Any) -> Channel:
    """The channel ``spec`` describes, behind its rate limiter; raises ``ChannelConfigError``.

    ``limiter`` passes ``clock=`` / ``sleep=`` to the limiter (tests).
    """
    from consumers.ratelimit import rate_limited

    return rate_limited(create_channel(spec, deps), spec, **limiter)


def build_channels(settings: Settings, deps: ChannelDeps) -> dict[str, Channel]:
    return {spec.name: build_channel(spec, deps) for spec in settings.channels}


def channel_problems(settings: Settings) -> Iterable[tuple[int, str, str]]:
    """(index, message, fix) for each channel that cannot be built."""
    # Building makes no request; the client is never opened.
    deps = ChannelDeps(http=httpx.AsyncClient(), security=settings.security)
    for index, spec in enumerate(settings.channels):
        if not spec.kind:
            continue  # reported by eventbus.config
        try:
            create_channel(spec, deps)
        except ChannelConfigError as exc:
            yield index, f"channel {spec.name!r}: {exc}", _fix_for(spec)


def _fix_for(spec: ChannelSpec) -> str:
    if spec.url is None:
        return ""
    return f"check it with: eventbus urls verify '<the {spec.kind} URL>'"
