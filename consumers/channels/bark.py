"""``bark``: an iOS push through a Bark server, ``bark://:DEVICE_KEY@host[:port][/path]``.

As shoutrrr's bark service (``pkg/services/push/bark``): a JSON POST to
``<scheme>://host[/path]/push`` with the device key in the body, the URL's
query keys (``title``, ``scheme``, ``sound``, ``badge``, ``icon``, ``group``,
``url``, ``category``, ``copy``; case-insensitive) copied into it. The server
answers ``{"code": 200, ...}``; any other code is a failure with its message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, base_url, channel_url, require, timeout_of
from ._service import body_json, failed, go_int, prefixed_title, with_detail
from .base import ChannelDeps, Message, OutcomeClass, SendResult
from .outcomes import classify_status

__all__ = ["BarkChannel", "create"]

_URL_KEYS = ("title", "scheme", "sound", "badge", "icon", "group", "url", "category", "copy")
# Copied into the payload as they are, when set.
_PASSED = ("sound", "icon", "group", "category", "copy")


class BarkChannel(HttpChannel):
    type = "bark"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        endpoint: str,
        device_key: str,
        badge: int = 0,
        click: str = "",
        fields: dict[str, str] | None = None,
        title_prefix: str = "",
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [device_key])
        self.endpoint = endpoint
        self._device_key = device_key
        self._badge = badge
        self._click = click
        self._fields = dict(fields or {})
        self._title_prefix = title_prefix

    def describe(self) -> str:
        return f"bark {self.endpoint}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        payload: dict[str, Any] = {
            "body": message.body or message.title,
            "device_key": self._device_key,
            "title": prefixed_title(self._title_prefix, message),
            "badge": self._badge,
            **self._fields,
        }
        click = self._click or message.link
        if click:
            payload["url"] = click
        return [
            PlannedRequest(
                "POST",
                self.endpoint,
                headers={"Content-Type": "application/json"},
                json=payload,
                secrets=self._secrets,
            )
        ]

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        result = provider_result(response, latency)
        data = body_json(body) or {}
        said = data.get("message") or ""
        if not result.ok:
            return with_detail(result, "bark", said)
        code = data.get("code", 200)
        if isinstance(code, int) and code != 200:
            # The server's own code in a 200 answer, classified as a status would be.
            outcome = classify_status(code) if 300 <= code < 600 else OutcomeClass.PERMANENT
            return failed(result, "bark", f"code {code} {said}".strip(), outcome)
        return result


def create(spec: ChannelSpec, deps: ChannelDeps) -> BarkChannel:
    opts = Options(spec, "bark")
    api_base = opts.string("api_base")
    opts.done()
    url = channel_url(spec, "bark")
    assert url is not None
    url.check_keys(_URL_KEYS)
    device_key = require(
        url.password, "bark device key", "write bark://:DEVICE_KEY@host (the key as the password)"
    )
    require(url.host, "bark host", "write bark://:DEVICE_KEY@host[:port][/path]")
    scheme = (url.get("scheme") or "https").lower()
    if scheme not in ("http", "https"):
        raise ChannelConfigError(
            f"bark URL: query key 'scheme' is {url.get('scheme')!r}: use http or https"
        )
    base = base_url(api_base, url.base(scheme))
    path = "".join(f"/{quote(segment, safe='')}" for segment in url.path)
    return BarkChannel(
        spec.name,
        deps.http,
        endpoint=f"{base}{path}/push",
        device_key=device_key,
        badge=go_int(url.get("badge") or "0", "bark URL: query key 'badge'"),
        click=url.get("url") or "",
        fields={key: url.get(key) or "" for key in _PASSED if url.get(key)},
        title_prefix=url.get("title") or "",
        timeout=timeout_of(spec, deps),
    )
