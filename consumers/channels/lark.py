"""``lark``: a Lark / Feishu custom bot, ``lark://open.larksuite.com/TOKEN[?secret=S]``.

As shoutrrr's lark service (``pkg/services/chat/lark``): the host must be
``open.larksuite.com`` (Lark; the default when empty) or ``open.feishu.cn``
(Feishu), the path is the bot token, and the JSON goes to
``/open-apis/bot/v2/hook/<TOKEN>``. Since a notification always has a
title, it goes out in the ``post`` (rich text) format, with the link
(``link=`` or the notification's) as a "More Info" anchor. With ``secret``
the body carries ``timestamp`` and ``sign`` (HMAC-SHA256 keyed with
``"<timestamp>\\n<secret>"`` over nothing, base64), computed when sent.

Lark answers HTTP 200 with ``{"code": 0}`` on success and a non-zero code
otherwise (19021 bad signature, 19024 keyword missing, ...); its rate limit
answer is ``{"code": 9499, "msg": "too many request"}`` (seen with HTTP 400),
which is retried after the minute window Lark counts in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, base_url, channel_url, timeout_of
from ._service import body_json, failed, prefixed_title, with_detail
from .base import ChannelDeps, Message, OutcomeClass, SendResult

__all__ = ["HOSTS", "LarkChannel", "create", "sign"]

HOSTS = ("open.larksuite.com", "open.feishu.cn")
# shoutrrr refuses a message over 4096 bytes; here the text is cut to fit.
TEXT_MAX_BYTES = 4096
RATE_LIMITED_CODE = 9499
_URL_KEYS = ("secret", "title", "link")


def sign(secret: str, timestamp: int) -> str:
    """Lark's signature of a custom bot request."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _cut_bytes(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode("utf-8", "ignore") + "\u2026"


class LarkChannel(HttpChannel):
    type = "lark"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        base: str,
        token: str,
        secret: str = "",
        link: str = "",
        title_prefix: str = "",
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, http, timeout, [token, secret])
        self.base = base
        self._token = token
        self._secret = secret
        self._link = link
        self._title_prefix = title_prefix
        self._clock = clock

    def describe(self) -> str:
        signed = " (signed)" if self._secret else ""
        return f"lark bot {self.base}{signed}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        lines: list[list[dict[str, str]]] = [
            [{"tag": "text", "text": _cut_bytes(message.body or message.title, TEXT_MAX_BYTES)}]
        ]
        link = self._link or message.link
        if link:
            lines.append([{"tag": "a", "text": "More Info", "href": link}])
        post = {"title": prefixed_title(self._title_prefix, message), "content": lines}
        payload: dict[str, Any] = {"msg_type": "post", "content": {"post": {"en_us": post}}}
        if self._secret:
            now = int(self._clock())
            payload["timestamp"] = str(now)
            payload["sign"] = sign(self._secret, now)
        return [
            PlannedRequest(
                "POST",
                f"{self.base}/open-apis/bot/v2/hook/{self._token}",
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
        # {"code": 0, "msg": "success"}; older servers: {"StatusCode": 0, ...}
        code = data.get("code", data.get("StatusCode", 0))
        said = f"code {code} {data.get('msg') or data.get('StatusMessage') or ''}".strip()
        if code == RATE_LIMITED_CODE:
            return failed(result, "lark", said, OutcomeClass.RATE_LIMITED, retry_after=60.0)
        if not result.ok:
            return with_detail(result, "lark", said) if data else result
        if code not in (0, None):
            return failed(result, "lark", said)
        return result


def create(spec: ChannelSpec, deps: ChannelDeps) -> LarkChannel:
    opts = Options(spec, "lark")
    api_base = opts.string("api_base")
    opts.done()
    url = channel_url(spec, "lark")
    assert url is not None
    host = url.host.lower() + (f":{url.port}" if url.port else "")
    if not host:
        host = HOSTS[0]
    elif host not in HOSTS:
        raise ChannelConfigError(
            f"lark URL: invalid host {host!r}: use 'open.larksuite.com' (Lark) "
            "or 'open.feishu.cn' (Feishu)"
        )
    token = "/".join(quote(segment, safe="") for segment in url.path)
    if not token:
        raise ChannelConfigError(
            "lark URL has no bot token: write lark://open.larksuite.com/TOKEN "
            "(TOKEN is 'xxx' in https://open.larksuite.com/open-apis/bot/v2/hook/xxx)"
        )
    url.check_keys(_URL_KEYS)
    return LarkChannel(
        spec.name,
        deps.http,
        base=base_url(api_base, f"https://{host}"),
        token=token,
        secret=url.get("secret") or "",
        link=url.get("link") or "",
        title_prefix=url.get("title") or "",
        timeout=timeout_of(spec, deps),
    )
