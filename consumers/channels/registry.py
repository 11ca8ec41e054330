"""Channel types by name, and building channels from their configuration.

``CHANNEL_TYPES`` is the one table of channel types: each ``ChannelType``
says how to build a channel (``create(spec, deps) -> Channel``, raising
``ChannelConfigError`` for an unusable definition and making no connection,
so ``eventbus config check`` validates a channel by creating it), which URL
schemes select it, and what advice ``config check`` gives about a valid but
risky definition. Channels built here come wrapped in their rate limiter
(``pacing.rate_limited``) when they have one, from ``rate_limit:`` in YAML or
the provider's default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec, Settings

from . import (
    bark,
    console,
    discord,
    generic,
    googlechat,
    gotify,
    ifttt,
    join,
    lark,
    matrix,
    mattermost,
    ntfy,
    opsgenie,
    pagerduty,
    pushbullet,
    pushover,
    rocketchat,
    signal,
    slack,
    smtp,
    teams,
    telegram,
    webhook,
    wecom,
    zulip,
)
from ._apprise import APPRISE_SCHEMES
from ._suggest import SuggestingError, did_you_mean
from .base import Channel, ChannelDeps
from .pacing import rate_limited
from .urls import spec_url_warnings

__all__ = [
    "CHANNEL_TYPES",
    "ChannelType",
    "build_channel",
    "build_channels",
    "channel_problems",
    "channel_warnings",
    "create_channel",
    "type_name",
]


def type_name(spec: ChannelSpec) -> str:
    """The channel's type as eventbus names it (``telegram`` for Apprise's ``tgram://``)."""
    return APPRISE_SCHEMES.get(spec.kind, spec.kind)


def _no_warnings(spec: ChannelSpec) -> list[str]:
    return []


@dataclass(frozen=True, slots=True)
class ChannelType:
    """One kind of channel: how to build it, its URL schemes, its config advice."""

    name: str
    create: Callable[[ChannelSpec, ChannelDeps], Channel]
    # shoutrrr-style schemes that select this type (examples in urls.SCHEMES)
    schemes: tuple[str, ...] = ()
    warnings: Callable[[ChannelSpec], list[str]] = _no_warnings


CHANNEL_TYPES: Final[Mapping[str, ChannelType]] = {
    kind.name: kind
    for kind in (
        ChannelType("console", console.create),
        ChannelType("webhook", webhook.create, warnings=webhook.warnings),
        ChannelType("telegram", telegram.create, ("telegram",)),
        ChannelType("discord", discord.create, ("discord",)),
        ChannelType("slack", slack.create, ("slack",)),
        ChannelType("smtp", smtp.create, ("smtp",)),
        ChannelType("ntfy", ntfy.create, ("ntfy",)),
        ChannelType("gotify", gotify.create, ("gotify",)),
        ChannelType("teams", teams.create, ("teams",)),
        ChannelType("matrix", matrix.create, ("matrix",)),
        ChannelType("pushover", pushover.create, ("pushover",)),
        ChannelType("mattermost", mattermost.create, ("mattermost",)),
        ChannelType("googlechat", googlechat.create, ("googlechat",)),
        ChannelType("generic", generic.create, ("generic",)),
        ChannelType("bark", bark.create, ("bark",)),
        ChannelType("ifttt", ifttt.create, ("ifttt",)),
        ChannelType("join", join.create, ("join",)),
        ChannelType("lark", lark.create, ("lark",)),
        ChannelType("pushbullet", pushbullet.create, ("pushbullet",)),
        ChannelType("rocketchat", rocketchat.create, ("rocketchat",), rocketchat.warnings),
        ChannelType("signal", signal.create, ("signal",)),
        ChannelType("wecom", wecom.create, ("wecom",)),
        ChannelType("zulip", zulip.create, ("zulip",), zulip.warnings),
        ChannelType("pagerduty", pagerduty.create, ("pagerduty",), pagerduty.warnings),
        ChannelType("opsgenie", opsgenie.create, ("opsgenie",)),
    )
}

# URL scheme -> the type it selects
_BY_SCHEME: Final = {scheme: kind for kind in CHANNEL_TYPES.values() for scheme in kind.schemes}


def _type_of(kind: str) -> ChannelType:
    # An Apprise scheme (tgram://, mailtos://, ...) selects the type it stands for.
    found = CHANNEL_TYPES.get(APPRISE_SCHEMES.get(kind, kind))
    if found is None:
        known = ", ".join(sorted(CHANNEL_TYPES))
        raise SuggestingError(
            f"unknown channel type {kind!r}: use one of {known}",
            fix=did_you_mean([kind], CHANNEL_TYPES),
        )
    return found


def create_channel(spec: ChannelSpec, deps: ChannelDeps) -> Channel:
    """The bare channel ``spec`` describes, without rate limiting."""
    if not spec.kind:
        raise ChannelConfigError(f"channel {spec.name!r} has neither 'type' nor 'url'")
    if spec.type and spec.url is not None:
        scheme = spec.url.get_secret_value().split(":", 1)[0].lower().split("+", 1)[0]
        # http(s) URLs belong to the type (webhook, generic ...); a service
        # scheme such as discord:// must agree with the declared type.
        selected = _BY_SCHEME.get(scheme)
        if selected is not None and selected.name != spec.type:
            raise ChannelConfigError(
                f"channel {spec.name!r} has type {spec.type!r} but a {scheme}:// url: "
                "drop 'type' (the URL scheme sets it) or fix the URL"
            )
    return _type_of(spec.kind).create(spec, deps)


def channel_warnings(spec: ChannelSpec) -> list[str]:
    """Advice for ``eventbus config check`` about a valid but risky definition.

    Includes the shoutrrr query keys the URL sets that eventbus does not act on.
    """
    return [*spec_url_warnings(spec), *_type_of(spec.kind).warnings(spec)]


def build_channel(spec: ChannelSpec, deps: ChannelDeps, **limiter: Any) -> Channel:
    """The channel ``spec`` describes, behind its rate limiter; raises ``ChannelConfigError``.

    ``limiter`` passes ``clock=`` / ``sleep=`` to the limiter (tests).
    """
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
            yield index, f"channel {spec.name!r}: {exc}", _fix_for(spec, exc)


def _fix_for(spec: ChannelSpec, error: ChannelConfigError) -> str:
    """The suggestion the error carries, else a command that explains the URL.

    ``urls verify`` takes every scheme of the table and plain http(s) webhook
    URLs; for a type it does not know, pointing at it would not help.
    """
    if isinstance(error, SuggestingError) and error.fix:
        return error.fix
    kind = type_name(spec)
    if spec.url is None or kind not in CHANNEL_TYPES:
        return ""
    if kind == "webhook" or CHANNEL_TYPES[kind].schemes:
        return f"check it with: eventbus urls verify '<the {spec.kind} URL>'"
    return ""
