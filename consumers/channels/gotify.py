"""``gotify``: ``gotify://host[:port][/subpath]/TOKEN``.

The application token is sent in the ``X-Gotify-Key`` header rather than in
the query string (shoutrrr's way), so it stays out of proxy access logs.
The priority follows the severity (debug 2, info 4, warning 6, error 8,
critical 10) unless the URL's ``priority=`` fixes it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import severity_look
from ._http import HttpChannel, PlannedRequest
from ._options import Options, channel_url, timeout_of
from .base import ChannelDeps, Message

__all__ = ["GotifyChannel", "create"]

_URL_KEYS = ("priority", "title", "disabletls", "useheader", "extras", "date", "token")
# shoutrrr's gotify_validation.go: a 15-character application token starting
# with 'A', or a newer "gtfyX." token of at least 49 characters.
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")


class GotifyChannel(HttpChannel):
    type = "gotify"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        base: str,
        token: str,
        priority: int | None = None,
        title_prefix: str = "",
        extras: dict[str, Any] | None = None,
        date: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [token])
        self.base = base
        self._extras = extras or {}
        self._date = date
        self._token = token
        self._priority = priority
        self._title_prefix = title_prefix

    def describe(self) -> str:
        return f"gotify {self.base}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        title = f"{self._title_prefix}: {message.title}" if self._title_prefix else message.title
        priority = self._priority
        if priority is None:
            priority = severity_look(message).gotify_priority
        body: dict[str, Any] = {
            "title": title,
            "message": message.body or message.title,
            "priority": priority,
            "extras": {"client::display": {"contentType": "text/plain"}},
        }
        if message.link:
            body["extras"]["client::notification"] = {"click": {"url": message.link}}
        body["extras"].update(self._extras)  # extras= from the URL
        if self._date:
            body["date"] = self._date
        return [
            PlannedRequest(
                "POST",
                f"{self.base}/message",
                headers={"Content-Type": "application/json", "X-Gotify-Key": self._token},
                json=body,
                secrets=self._secrets,
            )
        ]


def create(spec: ChannelSpec, deps: ChannelDeps) -> GotifyChannel:
    opts = Options(spec, "gotify")
    opts.done()
    url = channel_url(spec, "gotify")
    assert url is not None
    url.check_keys(_URL_KEYS)
    if not url.host:
        raise ChannelConfigError("gotify URL has no host: write gotify://host/TOKEN")
    if not url.path:
        raise ChannelConfigError(
            "gotify URL has no application token: write gotify://host[/subpath]/TOKEN"
        )
    *subpath, token = url.path
    if url.get("token") is not None:
        # shoutrrr's docs also write the API URL: gotify://host[/path]/message?token=T
        if url.path[-1] != "message":
            raise ChannelConfigError(
                "gotify URL has both a token path and token=: write gotify://host/TOKEN"
            )
        token = url.get("token") or ""
    if not _token_ok(token):
        raise ChannelConfigError(
            "gotify token (the last path segment) does not look like an application token "
            "(15 characters starting with 'A', e.g. AJFh0x8Y3l6fEc2): check the URL"
        )
    scheme = "http" if url.flag("disabletls", False) else "https"
    url.flag("useheader", False)  # the token always goes in X-Gotify-Key (checked only)
    base = url.base(scheme, *subpath)
    return GotifyChannel(
        spec.name,
        deps.http,
        base=base,
        token=token,
        priority=url.integer("priority", -2, 10),
        title_prefix=url.get("title") or "",
        extras=_extras(url.get("extras")),
        date=_date(url.get("date")),
        timeout=timeout_of(spec, deps),
    )


def _token_ok(token: str) -> bool:
    if len(token) >= 6 and token.startswith("gtfy") and token[4] != "." and token[5] == ".":
        return len(token) >= 49
    return len(token) == 15 and token[0] == "A" and set(token) <= _TOKEN_CHARS


def _extras(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        extras = json.loads(value)
    except ValueError:
        extras = None
    if not isinstance(extras, dict):
        raise ChannelConfigError(
            "gotify extras= must be a JSON object, percent-encoded, "
            'e.g. extras=%7B%22key%22%3A%22value%22%7D for {"key":"value"}'
        )
    return extras


def _date(value: str | None) -> str | None:
    """shoutrrr's accepted forms (RFC 3339, unix seconds, two plain forms) as RFC 3339 UTC."""
    if not value:
        return None
    text = value.strip()
    try:
        moment = datetime.fromtimestamp(int(text), UTC) if text.isdigit() else _parse_date(text)
    except (ValueError, OverflowError):
        raise ChannelConfigError(
            f"gotify date {value!r} is not a date: use RFC 3339 (2024-01-02T15:04:05Z), "
            "unix seconds, or 2024-01-02 15:04:05 (UTC)"
        ) from None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_date(text: str) -> datetime:
    if "T" in text and (text.endswith("Z") or "+" in text[10:] or "-" in text[10:]):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    for form in _DATE_FORMATS:
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(text)
