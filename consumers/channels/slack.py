"""``slack``: an incoming webhook or the ``chat.postMessage`` Web API.

- ``slack://hook:A-B-C@webhook`` posts to ``https://hooks.slack.com/services/A/B/C``
  (the legacy ``slack://A/B/C`` form too);
- ``slack://xoxb:REST@CHANNEL`` posts as a bot with token ``xoxb-REST``; the
  Web API answers HTTP 200 with ``ok: false`` on errors, so the body is checked.

The attachment is coloured by severity (``_format.SEVERITY_LOOKS``) unless the
URL's ``color=`` fixes it.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import severity_look
from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, base_url, channel_url, timeout_of
from .base import ChannelDeps, Message, OutcomeClass, SendResult
from .outcomes import excerpt
from .urls import ParsedURL

__all__ = ["DEFAULT_HOOKS_BASE", "DEFAULT_WEB_API_BASE", "SlackChannel", "create"]

DEFAULT_HOOKS_BASE = "https://hooks.slack.com"
DEFAULT_WEB_API_BASE = "https://slack.com"
_URL_KEYS = ("botname", "icon", "color", "title", "thread_ts")
_BOT_PREFIXES = ("xoxb", "xoxp")
# shoutrrr's slack_token.go: an optional type, then three parts (9+, 9+, 24+)
# joined by the same separator ('-', '/' or ',')
_TOKEN_RE = re.compile(
    r"(?:(?P<type>xox.|hook)[-:]|:?)(?P<p1>[A-Z0-9]{9,})(?P<s1>[-/,])"
    r"(?P<p2>[A-Z0-9]{9,})(?P<s2>[-/,])(?P<p3>[A-Za-z0-9]{24,})"
)


def escape_mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackChannel(HttpChannel):
    type = "slack"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        token: str,
        channel: str | None,
        api_base: str,
        botname: str | None = None,
        icon: str | None = None,
        color: str | None = None,
        title_prefix: str = "",
        thread_ts: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        parts = token.split("-")
        secrets = [token, "/".join(parts), parts[-1]] if channel is None else [token]
        super().__init__(name, http, timeout, secrets)
        self._token = token
        self.channel = channel  # None: incoming webhook
        self.api_base = api_base
        self._botname = botname
        self._icon = icon
        self._color = color
        self._title_prefix = title_prefix
        self._thread_ts = thread_ts

    @property
    def is_webhook(self) -> bool:
        return self.channel is None

    def describe(self) -> str:
        where = ""
        if self.api_base not in (DEFAULT_HOOKS_BASE, DEFAULT_WEB_API_BASE):
            where = f" via {self.api_base}"
        if self.is_webhook:
            return f"slack incoming webhook{where}"
        return f"slack bot -> {self.channel}{where}"

    def payload(self, message: Message) -> dict[str, Any]:
        title = f"{self._title_prefix}: {message.title}" if self._title_prefix else message.title
        body = message.body
        if message.link and message.link not in body:
            body = f"{body}\n<{message.link}>"
        attachment: dict[str, Any] = {
            "color": self._color or severity_look(message).hex_color,
            "text": escape_mrkdwn(body),
            "fallback": escape_mrkdwn(message.text),
        }
        payload: dict[str, Any] = {"text": f"*{escape_mrkdwn(title)}*", "attachments": [attachment]}
        if self.channel:
            payload["channel"] = self.channel
        if self._botname:
            payload["username"] = self._botname
        if self._icon:
            key = "icon_url" if self._icon.startswith(("http://", "https://")) else "icon_emoji"
            payload[key] = self._icon
        if self._thread_ts:
            payload["thread_ts"] = self._thread_ts
        return payload

    def plan(self, message: Message) -> list[PlannedRequest]:
        if self.is_webhook:
            path = "/".join(self._token.split("-", 2))
            url = f"{self.api_base}/services/{path}"
            headers = {"Content-Type": "application/json"}
        else:
            url = f"{self.api_base}/api/chat.postMessage"
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Authorization": f"Bearer {self._token}",
            }
        return [
            PlannedRequest(
                "POST", url, headers=headers, json=self.payload(message), secrets=self._secrets
            )
        ]

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        result = provider_result(response, latency)
        said = response.text[:200]
        if not result.ok:
            if said and result.error:
                return SendResult(
                    result.outcome,
                    status=result.status,
                    latency=latency,
                    retry_after=result.retry_after,
                    disable_channel=result.disable_channel,
                    response_excerpt=result.response_excerpt,
                    error=f"{result.error}: slack says {said!r}",
                )
            return result
        if self.is_webhook:
            return result
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("ok") is True:
            return result
        error = data.get("error") if isinstance(data, dict) else None
        return SendResult(
            OutcomeClass.PERMANENT,
            status=response.status_code,
            latency=latency,
            response_excerpt=excerpt(response.content) if response.content else None,
            error=f"slack API error: {error or 'response is not ok'}"
            + (
                ": invite the bot to the channel, or check its name"
                if error in {"channel_not_found", "not_in_channel"}
                else ""
            ),
        )


def _token_and_channel(url: ParsedURL) -> tuple[str, str | None, str | None]:
    """(token, bot channel or None for a webhook, legacy bot name), as shoutrrr reads them.

    shoutrrr (slack_config.go, slack_token.go): with a path, the legacy
    ``slack://[botname@]A/B/C`` (a webhook); else the token is the user info
    (``hook:A-B-C``, ``xoxb:A-B-C``, or bare ``A-B-C``) and the channel the host.
    """
    botname = None
    if url.path:
        text, channel, botname = "/".join((url.host, *url.path)), "webhook", url.user
    else:
        text = ":".join(p for p in (url.user, url.password) if p is not None)
        channel = url.host
    match = _TOKEN_RE.search(text)
    if match is None:
        raise ChannelConfigError(
            "slack token is malformed: use slack://hook:A-B-C@webhook for "
            "https://hooks.slack.com/services/A/B/C or slack://xoxb:A-B-C@CHANNEL for a bot "
            "(parts of at least 9, 9 and 24 letters/digits); percent-encode special characters"
        )
    if match["s1"] != match["s2"]:
        raise ChannelConfigError("slack token parts are separated by different characters")
    kind = (match["type"] or "hook").lower()
    token = f"{match['p1']}-{match['p2']}-{match['p3']}"
    if kind == "hook":
        return token, None, botname
    if kind not in _BOT_PREFIXES:
        raise ChannelConfigError(
            f"slack token type {kind!r} is not supported: use a bot (xoxb) or user (xoxp) "
            "token, or an incoming webhook (hook)"
        )
    if not channel or channel.lower() == "webhook":
        raise ChannelConfigError(
            "slack bot URL needs a channel: slack://xoxb:TOKEN@CHANNEL "
            "(channel id such as C0123456789)"
        )
    return f"{kind}-{token}", channel, botname


def create(spec: ChannelSpec, deps: ChannelDeps) -> SlackChannel:
    opts = Options(spec, "slack")
    url = channel_url(spec, "slack")
    assert url is not None
    url.check_keys(_URL_KEYS)
    token, channel, legacy_botname = _token_and_channel(url)
    default = DEFAULT_HOOKS_BASE if channel is None else DEFAULT_WEB_API_BASE
    api_base = base_url(opts.string("api_base"), default)
    opts.done()
    return SlackChannel(
        spec.name,
        deps.http,
        token=token,
        channel=channel,
        api_base=api_base,
        botname=url.get("botname") or legacy_botname or None,
        icon=url.get("icon") or None,
        color=url.get("color") or None,
        title_prefix=url.get("title") or "",
        thread_ts=url.get("thread_ts") or None,
        timeout=timeout_of(spec, deps),
    )
