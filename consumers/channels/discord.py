"""``discord``: a Discord webhook, ``discord://TOKEN@WEBHOOK_ID``.

The message goes out as an embed coloured by severity (``_format.SEVERITY_LOOKS``:
grey debug, blue info or green for success, orange warning, red error,
dark red critical) unless the URL's ``color=`` fixes it.
A body over the 4096-character embed limit becomes several messages.
Discord answers 429 with ``Retry-After`` (and ``retry_after`` in JSON);
both feed the rate limiter.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import severity_look, split_text
from ._http import HttpChannel, PlannedRequest
from ._options import Options, base_url, channel_url, require, timeout_of
from .base import ChannelDeps, Message

__all__ = ["DEFAULT_API_BASE", "DiscordChannel", "create"]

DEFAULT_API_BASE = "https://discord.com"
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
_URL_KEYS = ("thread_id", "username", "avatar", "avatarurl", "title", "color")


class DiscordChannel(HttpChannel):
    type = "discord"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        webhook_id: str,
        token: str,
        api_base: str = DEFAULT_API_BASE,
        thread_id: str | None = None,
        username: str | None = None,
        avatar_url: str | None = None,
        title_prefix: str = "",
        color: int | None = None,
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [token])
        self.webhook_id = webhook_id
        self._token = token
        self.api_base = api_base
        self.thread_id = thread_id
        self._username = username
        self._avatar_url = avatar_url
        self._title_prefix = title_prefix
        self._color = color

    def describe(self) -> str:
        where = "" if self.api_base == DEFAULT_API_BASE else f" via {self.api_base}"
        thread = f" thread {self.thread_id}" if self.thread_id else ""
        return f"discord webhook {self.webhook_id}{thread}{where}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        url = f"{self.api_base}/api/webhooks/{self.webhook_id}/{quote(self._token, safe='')}"
        url += "?wait=true"
        if self.thread_id:
            url += f"&thread_id={self.thread_id}"
        title = f"{self._title_prefix}: {message.title}" if self._title_prefix else message.title
        body = message.body
        if message.link and message.link not in body:
            body = f"{body}\n{message.link}" if body else message.link
        pieces = split_text(body, DESCRIPTION_MAX) if body else [""]
        color = self._color if self._color is not None else severity_look(message).color
        requests = []
        for index, piece in enumerate(pieces):
            embed: dict[str, Any] = {"description": piece, "color": color}
            if index == 0:
                embed["title"] = title[:TITLE_MAX]
                if message.link:
                    embed["url"] = message.link
                embed["timestamp"] = message.event.model_dump(mode="json")["timestamp"]
            payload: dict[str, Any] = {"embeds": [embed]}
            if self._username:
                payload["username"] = self._username
            if self._avatar_url:
                payload["avatar_url"] = self._avatar_url
            requests.append(
                PlannedRequest(
                    "POST",
                    url,
                    headers={"Content-Type": "application/json"},
                    json=payload,
                    secrets=self._secrets,
                    note=f"part {index + 1} of {len(pieces)}" if len(pieces) > 1 else "",
                )
            )
        return requests


def _color(value: str | None) -> int | None:
    if not value:
        return None
    text = value.strip().lower().removeprefix("#").removeprefix("0x")
    try:
        number = int(text, 16) if not text.isdigit() or len(text) == 6 else int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 0xFFFFFF:
        raise ChannelConfigError(
            f"discord color {value!r} is not valid: use a hex colour such as 0xE74C3C"
        )
    return number


def create(spec: ChannelSpec, deps: ChannelDeps) -> DiscordChannel:
    opts = Options(spec, "discord")
    url = channel_url(spec, "discord")
    assert url is not None
    api_base = base_url(opts.string("api_base"), DEFAULT_API_BASE)
    opts.done()
    url.check_keys(_URL_KEYS)
    # shoutrrr reads the token from the user name only (discord_config.go)
    token = require(
        url.user,
        "discord webhook token",
        "write discord://TOKEN@WEBHOOK_ID (from .../api/webhooks/WEBHOOK_ID/TOKEN)",
    )
    webhook_id = require(url.host, "discord webhook id", "write discord://TOKEN@WEBHOOK_ID")
    if not webhook_id.isdigit():
        raise ChannelConfigError(
            f"discord webhook id {webhook_id!r} is not numeric: write discord://TOKEN@WEBHOOK_ID"
        )
    if url.path not in {(), ("raw",)}:
        raise ChannelConfigError(
            "discord URL has a path: write discord://TOKEN@WEBHOOK_ID (only the path /raw "
            "is known, as in shoutrrr)"
        )
    thread_id = (url.get("thread_id") or "").strip() or None
    if thread_id is not None and not thread_id.isdigit():
        raise ChannelConfigError(f"discord thread_id {thread_id!r} must be numeric")
    return DiscordChannel(
        spec.name,
        deps.http,
        webhook_id=webhook_id,
        token=token,
        api_base=api_base,
        thread_id=thread_id,
        username=url.get("username") or None,
        avatar_url=url.get("avatarurl") or url.get("avatar") or None,
        title_prefix=url.get("title") or "",
        color=_color(url.get("color")),
        timeout=timeout_of(spec, deps),
    )
