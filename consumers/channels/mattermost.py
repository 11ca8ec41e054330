"""``mattermost``: an incoming webhook, ``mattermost://[user@]host[:port]/TOKEN[/channel]``.

The title is the message text; the body goes in an attachment coloured by
severity (``_format.SEVERITY_LOOKS``), as on Slack.
"""

from __future__ import annotations

from typing import Any

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import plain_text, severity_look
from ._http import HttpChannel, PlannedRequest
from ._options import Options, channel_url, timeout_of
from .base import ChannelDeps, Message

__all__ = ["MattermostChannel", "create"]

_URL_KEYS = ("icon", "title", "disabletls")


class MattermostChannel(HttpChannel):
    type = "mattermost"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        base: str,
        token: str,
        channel: str | None = None,
        username: str | None = None,
        icon: str | None = None,
        title_prefix: str = "",
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [token])
        self.base = base
        self._token = token
        self.channel = channel
        self._username = username
        self._icon = icon
        self._title_prefix = title_prefix

    def describe(self) -> str:
        channel = f" -> {self.channel}" if self.channel else ""
        return f"mattermost {self.base}{channel}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        title = f"{self._title_prefix}: {message.title}" if self._title_prefix else message.title
        body = message.body
        if message.link and message.link not in f"{title}\n{body}":
            body = f"{body}\n{message.link}" if body else message.link
        payload: dict[str, Any] = {"text": f"**{title}**"}
        if body:
            look = severity_look(message)
            fallback = plain_text(message).replace(message.title, title, 1)
            payload["attachments"] = [{"color": look.hex_color, "text": body, "fallback": fallback}]
        if self._username:
            payload["username"] = self._username
        if self.channel:
            payload["channel"] = self.channel
        if self._icon:
            payload["icon_url"] = self._icon
        return [
            PlannedRequest(
                "POST",
                f"{self.base}/hooks/{self._token}",
                headers={"Content-Type": "application/json"},
                json=payload,
                secrets=self._secrets,
            )
        ]


def create(spec: ChannelSpec, deps: ChannelDeps) -> MattermostChannel:
    opts = Options(spec, "mattermost")
    opts.done()
    url = channel_url(spec, "mattermost")
    assert url is not None
    url.check_keys(_URL_KEYS)
    if not url.host:
        raise ChannelConfigError("mattermost URL has no host: write mattermost://host/TOKEN")
    if not url.path or len(url.path) > 2:
        raise ChannelConfigError(
            "mattermost URL needs the webhook token as its path: mattermost://host/TOKEN[/channel]"
        )
    scheme = "http" if url.flag("disabletls", False) else "https"
    return MattermostChannel(
        spec.name,
        deps.http,
        base=url.base(scheme),
        token=url.path[0],
        channel=url.path[1] if len(url.path) > 1 else None,
        username=url.user or None,
        icon=url.get("icon") or None,
        title_prefix=url.get("title") or "",
        timeout=timeout_of(spec, deps),
    )
