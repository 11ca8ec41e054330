"""Checking and masking the body of an API-defined channel or subscription.

A body has exactly the fields of the YAML (``ChannelSpec``/``SubscriptionSpec``)
and goes through the code of ``eventbus config check``: the models (with the
``where`` filters of ``eventbus.filters``), the cross checks of
``eventbus.config.validate_settings`` (channels a subscription names, the
catalog), building the channel through ``consumers.channels.registry`` (its
options, URL, private-target guard) and compiling the templates. Every
problem is listed at once.

Masking: a channel's secrets are what the channel itself masks (its
``Redactor``: tokens, URL credentials, webhook secrets), plus any option whose
name says it is one (``secret``, ``token``, ``password``, ``key``). Those
fields are shown masked and stored sealed; the rest is stored as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from pydantic import ValidationError

from eventbus.config import validate_settings
from eventbus.errors import ChannelConfigError
from eventbus.redaction import MASK, Redactor
from eventbus.settings import ChannelSpec, Settings, SubscriptionSpec, redact_url
from eventbus.yamlfile import dotted

from ..channels.base import ChannelDeps, channel_redactor
from ..channels.registry import channel_problems, create_channel
from ..templates import template_problems

__all__ = ["KINDS", "Checked", "check_channel", "check_subscription", "mask_view", "unmask"]

KINDS: Final = ("channel", "subscription")
_SECRET_HINTS: Final = ("secret", "token", "password", "pass", "key")


@dataclass(frozen=True, slots=True)
class Checked:
    """A body that passed every check (``problems`` empty) or why it did not."""

    body: dict[str, Any] = field(repr=False)  # secrets in clear
    problems: list[str]
    secret_fields: frozenset[str] = frozenset()
    shown: Mapping[str, Any] | None = None


def _model_problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        where = dotted(loc) or "body"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown field '{where}': remove it or check its spelling")
        elif err["type"] == "missing":
            problems.append(f"'{where}' is required")
        else:
            problems.append(f"'{where}': {err['msg'].removeprefix('Value error, ')}")
    return problems


def check_channel(body: dict[str, Any], settings: Settings) -> Checked:
    """Validate a channel body like ``config check`` does; masks what it can."""
    try:
        spec = ChannelSpec.model_validate(body)
    except ValidationError as exc:
        return Checked(body, _model_problems(exc))
    problems: list[str] = []
    if not spec.kind:
        problems.append(
            f"channel {spec.name!r} has neither 'type' nor 'url': add type: "
            "webhook|telegram|console|... or a shoutrrr-style url"
        )
        return Checked(body, problems)
    alone = settings.model_copy(update={"channels": [spec], "subscriptions": []})
    for _, message, fix in channel_problems(alone):
        problems.append(f"{message} (fix: {fix})" if fix else message)
    redactor = Redactor()
    if not problems:
        deps = ChannelDeps(http=httpx.AsyncClient(), security=settings.security)
        try:
            redactor = channel_redactor(create_channel(spec, deps))
        except ChannelConfigError as exc:  # reported above already; kept for safety
            problems.append(str(exc))
    shown = mask_view(body, redactor)
    secret = frozenset(key for key in body if shown.get(key) != body[key])
    return Checked(body, problems, secret, shown)


def check_subscription(
    body: dict[str, Any], settings: Settings, channels: Iterable[ChannelSpec]
) -> Checked:
    """Validate a subscription body; ``channels`` are the ones it may name."""
    try:
        spec = SubscriptionSpec.model_validate(body)
    except ValidationError as exc:
        return Checked(body, _model_problems(exc))
    visible = settings.model_copy(update={"channels": list(channels), "subscriptions": [spec]})
    problems = [
        f"{problem.message} (fix: {problem.fix})" if problem.fix else problem.message
        for problem in validate_settings(visible, where="body")
    ]
    problems += [message for _, message, _ in template_problems([spec])]
    return Checked(body, problems, frozenset(), dict(body))


def _hinted(key: str) -> bool:
    return any(hint in key.lower() for hint in _SECRET_HINTS)


def mask_view(body: Mapping[str, Any], redactor: Redactor) -> dict[str, Any]:
    """``body`` as responses show it: every secret replaced by ``***``."""
    shown: dict[str, Any] = {}
    for key, value in body.items():
        if key == "url" and isinstance(value, str):
            shown[key] = redactor.mask(redact_url(value))
        elif _hinted(key) and isinstance(value, str | int) and not isinstance(value, bool):
            shown[key] = MASK
        else:
            shown[key] = _masked(value, redactor)
    return shown


def _masked(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.mask(value)
    if isinstance(value, list):
        return [_masked(item, redactor) for item in value]
    if isinstance(value, dict):
        return {key: _masked(item, redactor) for key, item in value.items()}
    return value


def unmask(
    patch: Mapping[str, Any], stored: Mapping[str, Any], shown: Mapping[str, Any]
) -> dict[str, Any]:
    """``patch`` with every echoed mask replaced by the stored secret it stands for.

    A field whose value equals what responses show for it, where that differs
    from the stored value, is the client sending back the mask: it keeps the
    stored value. Any other value replaces it.
    """
    out: dict[str, Any] = {}
    for key, value in patch.items():
        if key in stored and key in shown and shown[key] != stored[key] and value == shown[key]:
            out[key] = stored[key]
        else:
            out[key] = value
    return out
