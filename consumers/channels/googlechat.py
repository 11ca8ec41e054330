"""``googlechat``: a Google Chat space webhook,
``googlechat://chat.googleapis.com/v1/spaces/SPACE/messages?key=K&token=T``."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import headline
from ._http import HttpChannel, PlannedRequest
from ._options import Options, base_url, channel_url, timeout_of
from .base import ChannelDeps, Message

__all__ = ["DEFAULT_HOST", "GoogleChatChannel", "create"]

DEFAULT_HOST = "chat.googleapis.com"
TEXT_MAX = 4096
_URL_KEYS = ("key", "token", "threadkey")


class GoogleChatChannel(HttpChannel):
    type = "googlechat"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        base: str,
        path: str,
        key: str,
        token: str,
        thread_key: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [key, token])
        self.base = base
        self.path = path
        self._key = key
        self._token = token
        self._thread_key = thread_key

    def describe(self) -> str:
        return f"googlechat {self.base}{self.path}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        query = {"key": self._key, "token": self._token}
        if self._thread_key:
            query.update(
                threadKey=self._thread_key,
                messageReplyOption="REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD",
            )
        title = headline(message)
        text = f"*{title}*\n{message.body}" if message.body else f"*{title}*"
        if message.link and message.link not in text:
            text += f"\n{message.link}"
        if len(text) > TEXT_MAX:
            text = text[: TEXT_MAX - 1] + "\u2026"
        return [
            PlannedRequest(
                "POST",
                f"{self.base}{self.path}?{urlencode(query)}",
                headers={"Content-Type": "application/json; charset=UTF-8"},
                json={"text": text},
                secrets=self._secrets,
            )
        ]


def create(spec: ChannelSpec, deps: ChannelDeps) -> GoogleChatChannel:
    opts = Options(spec, "googlechat")
    override = opts.string("api_base")
    opts.done()
    url = channel_url(spec, "googlechat")
    assert url is not None
    url.check_keys(_URL_KEYS)
    key, token = url.get("key"), url.get("token")
    if not key or not token:
        raise ChannelConfigError(
            "googlechat URL needs both key= and token= (copy them from the space's webhook URL)"
        )
    if len(url.path) != 4 or url.path[:2] != ("v1", "spaces") or url.path[3] != "messages":
        raise ChannelConfigError(
            "googlechat URL path must be /v1/spaces/SPACE/messages, as in the webhook URL"
        )
    base = base_url(override, url.base("https", host=url.host or DEFAULT_HOST))
    return GoogleChatChannel(
        spec.name,
        deps.http,
        base=base,
        path="/" + "/".join(url.path),
        key=key,
        token=token,
        thread_key=url.get("threadkey") or None,
        timeout=timeout_of(spec, deps),
    )
