"""``ifttt``: IFTTT Webhooks (Maker) events, ``ifttt://KEY/?events=a,b``.

As shoutrrr's ifttt service (``pkg/services/push/ifttt``): one JSON POST
``{"value1", "value2", "value3"}`` to ``/trigger/<event>/with/key/<KEY>``
per event. ``value1``..``value3`` come from the URL; the message goes into
value ``messagevalue`` (1-3, default 2) and the title into ``titlevalue``
(0 = nowhere, the default). With no title value, the message value carries
title and body together, so the title is never lost.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, base_url, channel_url, require, timeout_of
from ._service import body_json, go_int, prefixed_title, with_detail
from .base import ChannelDeps, Message, SendResult
from .urls import ParsedURL, split_list

__all__ = ["DEFAULT_API_BASE", "IftttChannel", "create"]

DEFAULT_API_BASE = "https://maker.ifttt.com"
_URL_KEYS = ("events", "value1", "value2", "value3", "messagevalue", "titlevalue", "title")


class IftttChannel(HttpChannel):
    type = "ifttt"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        key: str,
        events: list[str],
        values: tuple[str, str, str] = ("", "", ""),
        message_value: int = 2,
        title_value: int = 0,
        title_prefix: str = "",
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [key])
        self._key = key
        self.events = events
        self._values = values
        self.message_value = message_value
        self.title_value = title_value
        self._title_prefix = title_prefix
        self.api_base = api_base

    def describe(self) -> str:
        where = "" if self.api_base == DEFAULT_API_BASE else f" via {self.api_base}"
        return f"ifttt events {', '.join(self.events)}{where}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        title = prefixed_title(self._title_prefix, message)
        values = list(self._values)
        if self.title_value:
            values[self.title_value - 1] = title
            values[self.message_value - 1] = message.body or title
        else:
            values[self.message_value - 1] = f"{title}\n{message.body}" if message.body else title
        payload = {f"value{index}": value for index, value in enumerate(values, 1)}
        key = quote(self._key, safe="")
        return [
            PlannedRequest(
                "POST",
                f"{self.api_base}/trigger/{quote(event, safe='')}/with/key/{key}",
                headers={"Content-Type": "application/json"},
                json=payload,
                secrets=self._secrets,
                note=f"event {event}" if len(self.events) > 1 else "",
            )
            for event in self.events
        ]

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        # A bad key is a 401 with {"errors": [{"message": "You sent an invalid key."}]}.
        result = provider_result(response, latency)
        errors = (body_json(body) or {}).get("errors")
        if isinstance(errors, list):
            said = "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))
            return with_detail(result, "ifttt", said)
        return result


def _value_field(url: ParsedURL, key: str, default: int) -> int:
    value = url.get(key)
    return default if value is None else go_int(value, f"ifttt URL: query key {key!r}")


def create(spec: ChannelSpec, deps: ChannelDeps) -> IftttChannel:
    opts = Options(spec, "ifttt")
    api_base = base_url(opts.string("api_base"), DEFAULT_API_BASE)
    opts.done()
    url = channel_url(spec, "ifttt")
    assert url is not None
    url.check_keys(_URL_KEYS)
    message_value = _value_field(url, "messagevalue", 2)
    title_value = _value_field(url, "titlevalue", 0)
    # shoutrrr's own checks and wording (ifttt_config.go)
    if not 1 <= message_value <= 3:
        raise ChannelConfigError(
            f"ifttt URL: messagevalue is {message_value}: only values 1-3 are supported"
        )
    if not 0 <= title_value <= 3:
        raise ChannelConfigError(
            f"ifttt URL: titlevalue is {title_value}: "
            "only values 1-3 or 0 (for disabling) are supported"
        )
    if title_value and title_value == message_value:
        raise ChannelConfigError("ifttt URL: titlevalue cannot use the same number as messagevalue")
    events = split_list(url.get("events"))
    if not events:
        raise ChannelConfigError(
            "ifttt URL has no events: write ifttt://KEY/?events=event1[,event2]"
        )
    key = require(url.host, "ifttt webhook key", "write ifttt://KEY/?events=event1")
    values = (url.get("value1") or "", url.get("value2") or "", url.get("value3") or "")
    return IftttChannel(
        spec.name,
        deps.http,
        key=key,
        events=events,
        values=values,
        message_value=message_value,
        title_value=title_value,
        title_prefix=url.get("title") or "",
        api_base=api_base,
        timeout=timeout_of(spec, deps),
    )
