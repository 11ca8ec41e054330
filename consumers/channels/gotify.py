"""``gotify``: ``gotify://host[:port][/subpath]/TOKEN``.

The application token is sent in the ``X-Gotify-Key`` header rather than in
the query string (shoutrrr's way), so it stays out of proxy access logs.
The priority follows the severity (debug 2, info 4, warning 6, error 8,
critical 10) unless the URL's ``priority=`` fixes it.
"""

from __future__ import annotations

from typing import Any

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import keeps_options, severity_look
from ._http import HttpChannel, PlannedRequest
from ._options import Options, channel_url, timeout_of
from .base import ChannelDeps, Message

__all__ = ["GotifyChannel", "create"]

_URL_KEYS = ("priority", "title", "disabletls")


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
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [token])
        self.base = base
        self._token = token
        self._priority = priority
        self._title_prefix = title_prefix

    def describe(self) -> str:
        return f"gotify {self.base}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        title = f"{self._title_prefix}: {message.title}" if self._title_prefix else message.title
        priority = self._priority if keeps_options(message) else None
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
    if len(token) < 10 or not token.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ChannelConfigError(
            "gotify token (the last path segment) does not look like an application token "
            "(15 letters/digits, e.g. AJFh0x8Y3l6fEc2): check the URL"
        )
    scheme = "http" if url.flag("disabletls", False) else "https"
    base = url.base(scheme, *subpath)
    return GotifyChannel(
        spec.name,
        deps.http,
        base=base,
        token=token,
        priority=url.integer("priority", 0, 10),
        title_prefix=url.get("title") or "",
        timeout=timeout_of(spec, deps),
    )
