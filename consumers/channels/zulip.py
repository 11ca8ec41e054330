"""``zulip``: a Zulip bot, ``zulip://BOT_EMAIL:API_KEY@HOST[:PORT]/?stream=S&topic=T``.

The bot's e-mail goes in the user part with its ``@`` written ``%40``
(``zulip://alerts-bot%40example.zulipchat.com:KEY@example.zulipchat.com``).
Messages go to ``stream`` under ``topic`` (else the URL's ``title``, else
the notification's title); ``type=direct&to=a@example.com,b@example.com``
sends a direct message instead. ``read_by_sender=yes`` marks it read for
the bot.

shoutrrr's Zulip service reads only its own keys and ignores any other query
key; so does this channel, but ``config check`` names the ignored keys.
Zulip answers 429 with ``Retry-After`` (and ``retry-after`` in the JSON body).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Final

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import headline, tagged_text
from ._http import HttpChannel, PlannedRequest, basic_auth, provider_result
from ._options import Options, base_url, channel_url, timeout_of
from .base import ChannelDeps, Message, OutcomeClass, SendResult
from .urls import ParsedURL, parse_url, split_list

__all__ = ["CONTENT_MAX_BYTES", "TOPIC_MAX", "ZulipChannel", "create", "warnings"]

# Zulip's defaults. shoutrrr asks the server for its own limits first
# (/api/v1/register); we stay within the defaults servers start with.
CONTENT_MAX_BYTES: Final = 10000
TOPIC_MAX: Final = 60
_URL_KEYS: Final = ("stream", "topic", "title", "type", "to", "read_by_sender")
_TYPES: Final = ("channel", "direct")
# shoutrrr's host check (pkg/services/chat/zulip/zulip_service.go): a DNS name.
_HOST = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,}$")
_EXAMPLE = "zulip://bot%40example.zulipchat.com:API_KEY@example.zulipchat.com/?stream=alerts"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _cut_bytes(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "\u2026"


class ZulipChannel(HttpChannel):
    type = "zulip"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        base: str,
        bot_email: str,
        api_key: str,
        stream: str,
        topic: str = "",
        title: str = "",
        direct_to: list[str] | None = None,
        read_by_sender: bool = False,
        timeout: float = 15.0,
    ) -> None:
        auth = basic_auth(bot_email, api_key)
        super().__init__(name, http, timeout, [api_key, auth.removeprefix("Basic ")])
        self.base = base
        self._auth = auth
        self.stream = stream
        self.topic = topic
        self.title = title
        self.direct_to = direct_to
        self.read_by_sender = read_by_sender

    def describe(self) -> str:
        if self.direct_to is not None:
            return f"zulip {self.base} direct to {len(self.direct_to)} user(s)"
        return f"zulip {self.base} stream {self.stream!r}"

    def _topic_and_content(self, message: Message) -> tuple[str, str]:
        # shoutrrr: the topic, else the title as topic; a title next to a
        # topic is prepended to the content.
        topic = self.topic or self.title
        if not topic:
            return _cut(headline(message), TOPIC_MAX), message.body or message.title
        content = tagged_text(message)
        if self.topic and self.title:
            content = f"{self.title}\n\n{content}"
        return topic, content

    def plan(self, message: Message) -> list[PlannedRequest]:
        topic, content = self._topic_and_content(message)
        form = {"content": _cut_bytes(content, CONTENT_MAX_BYTES)}
        if self.direct_to is not None:
            form.update(type="direct", to=json.dumps(self.direct_to))
        else:
            # "stream" rather than shoutrrr's "channel": servers before Zulip 9 know only it
            form.update(type="stream", to=self.stream, topic=topic)
        if self.read_by_sender:
            form["read_by_sender"] = "true"
        return [
            PlannedRequest(
                "POST",
                f"{self.base}/api/v1/messages",
                headers={"Authorization": self._auth},
                form=form,
                secrets=self._secrets,
            )
        ]

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        result = provider_result(response, latency)
        if result.ok:
            return result
        try:
            answer = response.json()
        except ValueError:
            return result
        if not isinstance(answer, dict):
            return result
        wait = answer.get("retry-after")
        limited = response.status_code == 429 and result.retry_after is None
        if limited and isinstance(wait, int | float) and wait >= 0:
            result = replace(result, outcome=OutcomeClass.RATE_LIMITED, retry_after=wait)
        if answer.get("msg"):
            code = f" ({answer['code']})" if answer.get("code") else ""
            result = replace(
                result, error=f"{result.error}: zulip says {answer['msg']!s:.200}{code}"
            )
        return result


def _message_type(url: ParsedURL) -> str:
    kind = (url.get("type") or "channel").lower()
    if kind not in _TYPES:
        raise ChannelConfigError(
            f"zulip URL: type {url.get('type')!r} is not valid: use channel (the default) or direct"
        )
    return kind


def create(spec: ChannelSpec, deps: ChannelDeps) -> ZulipChannel:
    opts = Options(spec, "zulip")
    api_base = opts.string("api_base")
    opts.done()
    url = channel_url(spec, "zulip")
    assert url is not None
    if not url.user:
        raise ChannelConfigError(f"zulip URL has no bot e-mail: write {_EXAMPLE}")
    if url.password is None:
        raise ChannelConfigError(f"zulip URL has no API key after the bot e-mail: write {_EXAMPLE}")
    if not url.host:
        raise ChannelConfigError(f"zulip URL has no host: write {_EXAMPLE}")
    if not _HOST.match(url.host):
        raise ChannelConfigError(
            f"zulip host {url.host!r} is not a DNS name such as example.zulipchat.com"
        )
    kind = _message_type(url)
    stream = url.get("stream") or ""
    topic = url.get("topic") or ""
    if len(topic) > TOPIC_MAX:
        raise ChannelConfigError(
            f"zulip topic is {len(topic)} characters long: Zulip allows {TOPIC_MAX}"
        )
    direct_to = None
    if kind == "direct":
        direct_to = split_list(url.get("to") or stream)
        if not direct_to:
            raise ChannelConfigError(
                "zulip direct message has no recipients: add to=user@example.com[,...]"
            )
    elif not stream:
        raise ChannelConfigError(f"zulip URL has no stream: add ?stream=NAME, e.g. {_EXAMPLE}")
    return ZulipChannel(
        spec.name,
        deps.http,
        base=base_url(api_base, url.base("https")),
        bot_email=url.user,
        api_key=url.password,
        stream=stream,
        topic=topic,
        title=url.get("title") or "",
        direct_to=direct_to,
        read_by_sender=url.flag("read_by_sender", False),
        timeout=timeout_of(spec, deps),
    )


def warnings(spec: ChannelSpec) -> list[str]:
    """The query keys a zulip URL has that nothing reads (shoutrrr ignores them too)."""
    if spec.url is None:
        return []
    try:
        url = parse_url(spec.url.get_secret_value(), schemes=["zulip"])
    except ChannelConfigError:
        return []  # create() reports it
    ignored = sorted(key for key in url.query if key not in _URL_KEYS)
    if not ignored:
        return []
    return [
        f"zulip channel {spec.name!r}: query key(s) {', '.join(map(repr, ignored))} "
        f"are ignored (known keys: {', '.join(_URL_KEYS)})"
    ]
