"""``join``: Join by joaoapps, ``join://shoutrrr:API_KEY@join/?devices=ID1,ID2``.

As shoutrrr's join service (``pkg/services/push/join``): one POST to the
``sendPush`` endpoint with everything in the query string (``deviceIds``,
``apikey``, ``text``, ``title``, ``icon``) and an empty ``text/plain`` body.
Join reports a failure in a 200 answer (``{"success": false,
"errorMessage": ...}``), which is checked here (shoutrrr only looks at the
status). The link of a notification goes in ``url``.
"""

from __future__ import annotations

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, base_url, channel_url, require, timeout_of
from ._service import body_json, failed, prefixed_title, with_detail
from .base import ChannelDeps, Message, SendResult
from .urls import split_list

__all__ = ["DEFAULT_API_BASE", "JoinChannel", "create"]

DEFAULT_API_BASE = "https://joinjoaomgcd.appspot.com"
SEND_PATH = "/_ah/api/messaging/v1/sendPush"
_URL_KEYS = ("devices", "title", "icon")


class JoinChannel(HttpChannel):
    type = "join"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        devices: list[str],
        icon: str = "",
        title_prefix: str = "",
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [api_key])
        self._api_key = api_key
        self.devices = devices
        self._icon = icon
        self._title_prefix = title_prefix
        self.api_base = api_base

    def describe(self) -> str:
        where = "" if self.api_base == DEFAULT_API_BASE else f" via {self.api_base}"
        return f"join devices {', '.join(self.devices)}{where}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        title = prefixed_title(self._title_prefix, message)
        params = {
            "deviceIds": ",".join(self.devices),
            "apikey": self._api_key,
            "text": message.body or title,
            "title": title,
        }
        if self._icon:
            params["icon"] = self._icon
        if message.link:
            params["url"] = message.link
        url = httpx.URL(f"{self.api_base}{SEND_PATH}", params=params)
        return [
            PlannedRequest(
                "POST",
                url,
                headers={"Content-Type": "text/plain"},
                content=b"",
                secrets=self._secrets,
            )
        ]

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        result = provider_result(response, latency)
        data = body_json(body) or {}
        said = data.get("errorMessage") or ""
        if not result.ok:
            return with_detail(result, "join", said)
        if data.get("success") is False:
            return failed(result, "join", said or "success: false")
        return result


def create(spec: ChannelSpec, deps: ChannelDeps) -> JoinChannel:
    opts = Options(spec, "join")
    api_base = base_url(opts.string("api_base"), DEFAULT_API_BASE)
    opts.done()
    url = channel_url(spec, "join")
    assert url is not None
    url.check_keys(_URL_KEYS)
    # shoutrrr checks the devices first (join_config.go)
    devices = split_list(url.get("devices"))
    if not devices:
        raise ChannelConfigError(
            "join URL has no devices: write join://shoutrrr:API_KEY@join/?devices=ID1[,ID2]"
        )
    api_key = require(
        url.password,
        "join API key",
        "write join://shoutrrr:API_KEY@join/?devices=ID (the key as the password)",
    )
    return JoinChannel(
        spec.name,
        deps.http,
        api_key=api_key,
        devices=devices,
        icon=url.get("icon") or "",
        title_prefix=url.get("title") or "",
        api_base=api_base,
        timeout=timeout_of(spec, deps),
    )
