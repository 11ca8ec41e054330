"""``wecom``: a WeCom (WeChat Work) group bot, ``wecom://KEY``.

``KEY`` is the ``key=`` of the bot's webhook URL
(``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY``). The message
goes out as a ``text`` message; ``mentioned_list`` (user ids, or ``@all``)
and ``mentioned_mobile_list`` (phone numbers) are comma-separated lists.

WeCom answers HTTP 200 for its own errors and reports them as ``errcode`` in
the body: 0 is success, 45009 is its rate limit (20 messages a minute per
bot), -1 means busy; every other code (93000: the key is wrong) is permanent.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import tagged_text
from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, base_url, channel_url, timeout_of
from .base import ChannelDeps, Message, OutcomeClass, SendResult
from .urls import split_list

__all__ = ["CONTENT_MAX_BYTES", "DEFAULT_API_BASE", "WecomChannel", "create"]

DEFAULT_API_BASE: Final = "https://qyapi.weixin.qq.com"
# WeCom's documented limit for text content, in UTF-8 bytes.
CONTENT_MAX_BYTES: Final = 2048
_URL_KEYS = ("key", "mentioned_list", "mentioned_mobile_list")
# The characters shoutrrr refuses in a key (pkg/services/chat/wecom/wecom_config.go)
_BAD_KEY_CHARS = set("@!#$%^&*()+=[]{}|\\:;\"'<>?,./")
_RATE_LIMITED: Final = 45009
_BUSY: Final = -1
# 45009 comes with no hint; the bot's window is a minute.
_RATE_LIMIT_WAIT: Final = 60.0


def _cut_bytes(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "\u2026"


class WecomChannel(HttpChannel):
    type = "wecom"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        key: str,
        mentioned: list[str],
        mentioned_mobiles: list[str],
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [key])
        self._key = key
        self.mentioned = mentioned
        self.mentioned_mobiles = mentioned_mobiles
        self.api_base = api_base

    def describe(self) -> str:
        where = "" if self.api_base == DEFAULT_API_BASE else f" via {self.api_base}"
        return f"wecom bot ***{where}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        text: dict[str, Any] = {"content": _cut_bytes(tagged_text(message), CONTENT_MAX_BYTES)}
        if self.mentioned:
            text["mentioned_list"] = self.mentioned
        if self.mentioned_mobiles:
            text["mentioned_mobile_list"] = self.mentioned_mobiles
        url = httpx.URL(f"{self.api_base}/cgi-bin/webhook/send", params={"key": self._key})
        return [
            PlannedRequest(
                "POST",
                url,
                headers={"Content-Type": "application/json"},
                json={"msgtype": "text", "text": text},
                secrets=self._secrets,
            )
        ]

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        result = provider_result(response, latency)
        if not result.ok:
            return result
        try:
            answer = response.json()
        except ValueError:
            answer = None
        code = answer.get("errcode") if isinstance(answer, dict) else None
        if code == 0:
            return result
        if not isinstance(code, int):
            return replace(
                result,
                outcome=OutcomeClass.PERMANENT,
                error=f"HTTP {response.status_code} but not a WeCom answer (no errcode)",
            )
        detail = f"wecom errcode {code}: {str(answer.get('errmsg', ''))[:200]}"
        if code == _RATE_LIMITED:
            return replace(
                result,
                outcome=OutcomeClass.RATE_LIMITED,
                retry_after=_RATE_LIMIT_WAIT,
                error=f"{detail} (retry after {_RATE_LIMIT_WAIT:g}s)",
            )
        outcome = OutcomeClass.RETRYABLE if code == _BUSY else OutcomeClass.PERMANENT
        return replace(result, outcome=outcome, error=detail)


def create(spec: ChannelSpec, deps: ChannelDeps) -> WecomChannel:
    opts = Options(spec, "wecom")
    api_base = base_url(opts.string("api_base"), DEFAULT_API_BASE)
    opts.done()
    url = channel_url(spec, "wecom")
    assert url is not None
    url.check_keys(_URL_KEYS)
    key = url.get("key") or url.host
    if not key:
        raise ChannelConfigError(
            "wecom URL has no webhook key: write wecom://KEY (the key= of the bot's webhook URL)"
        )
    if url.user is not None or url.password is not None:
        raise ChannelConfigError("wecom URL takes no user or password: write wecom://KEY")
    if url.port is not None or url.path or _BAD_KEY_CHARS & set(key):
        raise ChannelConfigError(
            "wecom webhook key is not valid: it has only letters, digits, '-' and '_' "
            "(write wecom://KEY, nothing after the key but ?query)"
        )
    return WecomChannel(
        spec.name,
        deps.http,
        key=key,
        mentioned=split_list(url.get("mentioned_list")),
        mentioned_mobiles=split_list(url.get("mentioned_mobile_list")),
        api_base=api_base,
        timeout=timeout_of(spec, deps),
    )
