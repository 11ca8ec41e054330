"""Reading a channel's YAML options and URL with uniform, redacted errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec, redact_url

from ._suggest import SuggestingError, did_you_mean
from .base import ChannelDeps
from .urls import SCHEMES, ParsedURL, parse_flag, parse_url

__all__ = ["COMMON_KEYS", "Options", "base_url", "channel_url", "timeout_of", "unknown_options"]

# The keys every channel takes (name, type, url, enabled, timeout, rate_limit):
# a misspelt one lands among the type's options, so it is suggested from there.
COMMON_KEYS = tuple(ChannelSpec.model_fields)


def unknown_options(kind: str, unknown: list[str], known: list[str]) -> SuggestingError:
    """The error for options no channel of ``kind`` takes, with a "did you mean"."""
    listed = ", ".join(sorted(known)) or "(none)"
    return SuggestingError(
        f"unknown option(s) {', '.join(map(repr, unknown))} for a {kind} channel; "
        f"known options: {listed} (and the common {', '.join(COMMON_KEYS[1:])})",
        fix=did_you_mean(unknown, [*known, *COMMON_KEYS]),
    )


class Options:
    """The type-specific YAML keys of one channel, consumed one by one.

    ``done()`` rejects keys nobody asked for, so a typo is an error instead
    of a silently ignored setting.
    """

    def __init__(self, spec: ChannelSpec, kind: str) -> None:
        self._kind = kind
        self._values: dict[str, Any] = spec.options
        self._used: set[str] = set()

    def _take(self, key: str) -> Any:
        self._used.add(key)
        return self._values.get(key)

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self._take(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ChannelConfigError(f"{self._kind} option {key!r} must be a string")
        return str(value)

    def secret(self, key: str) -> str | None:
        value = self._take(key)
        if value is None:
            return None
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if not isinstance(value, str | int):
            raise ChannelConfigError(f"{self._kind} option {key!r} must be a string")
        return str(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._take(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return parse_flag(str(value), f"{self._kind} option {key!r}")

    def strings(self, key: str) -> list[str]:
        """A list, given as a YAML list or a comma-separated string."""
        value = self._take(key)
        if value is None:
            return []
        if isinstance(value, str | int):
            return [item.strip() for item in str(value).split(",") if item.strip()]
        if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
            return [str(v).strip() for v in value if str(v).strip()]
        raise ChannelConfigError(
            f"{self._kind} option {key!r} must be a string or a list of strings"
        )

    def integer(self, key: str, low: int, high: int) -> int | None:
        value = self._take(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ChannelConfigError(
                f"{self._kind} option {key!r} is {value!r}: use a whole number from {low} to {high}"
            )
        return value

    def done(self) -> None:
        unknown = sorted(set(self._values) - self._used)
        if unknown:
            raise unknown_options(self._kind, unknown, sorted(self._used))


def channel_url(spec: ChannelSpec, scheme: str, *, required: bool = True) -> ParsedURL | None:
    """The parsed ``url:`` of a channel, which must use ``scheme``."""
    if spec.url is None:
        if required:
            raise ChannelConfigError(
                f"a {scheme} channel needs a url, e.g. url: {SCHEMES.get(scheme, scheme + '://')}"
            )
        return None
    return parse_url(spec.url.get_secret_value(), schemes=[scheme])


def base_url(value: str | None, default: str, key: str = "api_base") -> str:
    """A validated http(s) base URL without a trailing slash."""
    if value is None:
        return default
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ChannelConfigError(
            f"option {key!r} must be an http(s) URL such as {default}, "
            f"not {redact_url(value)[:80]!r}"
        )
    if parts.query or parts.fragment:
        raise ChannelConfigError(f"option {key!r} must not have a query or fragment")
    return value.rstrip("/")


def timeout_of(spec: ChannelSpec, deps: ChannelDeps) -> float:
    return float(spec.timeout) if spec.timeout is not None else deps.timeout


def require(value: str | None, what: str, fix: str) -> str:
    if not value:
        raise ChannelConfigError(f"{what} is missing: {fix}")
    return value
