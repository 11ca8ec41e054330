"""``rocketchat``: a Rocket.Chat incoming webhook,
``rocketchat://[sender@]host[:port]/TOKEN_A/TOKEN_B[/channel|/@user]``.

As shoutrrr's rocketchat service (``pkg/services/chat/rocketchat``): a JSON
POST of ``{"text", "username", "channel"}`` to
``https://host[:port]/hooks/TOKEN_A/TOKEN_B``. The user name before ``@``
posts as that sender; a third path segment picks the channel (``#`` is
added unless it names a user with ``@``), and so does a fragment
(``.../TOKEN_B/#channel``). shoutrrr reads no query keys for this service
and ignores any given; here they are accepted too, with a warning from
``eventbus config check``.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, base_url, channel_url, timeout_of
from ._service import body_json, plain_fragment, with_detail
from .base import ChannelDeps, Message, SendResult
from .urls import ParsedURL

__all__ = ["RocketchatChannel", "create", "warnings"]


class RocketchatChannel(HttpChannel):
    type = "rocketchat"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        base: str,
        token_a: str,
        token_b: str,
        username: str = "",
        channel: str = "",
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [token_a, token_b])
        self.base = base
        self._token_a = token_a
        self._token_b = token_b
        self.username = username
        self.channel = channel

    def describe(self) -> str:
        to = f" to {self.channel}" if self.channel else ""
        return f"rocketchat {self.base}{to}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        text = f"*{message.title}*\n{message.body}" if message.body else f"*{message.title}*"
        if message.link and message.link not in text:
            text = f"{text}\n{message.link}"
        payload = {"text": text}
        if self.username:
            payload["username"] = self.username
        if self.channel:
            payload["channel"] = self.channel
        tokens = f"{quote(self._token_a, safe='')}/{quote(self._token_b, safe='')}"
        return [
            PlannedRequest(
                "POST",
                f"{self.base}/hooks/{tokens}",
                headers={"Content-Type": "application/json"},
                json=payload,
                secrets=self._secrets,
            )
        ]

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        # A bad token or channel: 4xx with {"success": false, "error": "..."}
        result = provider_result(response, latency)
        return with_detail(result, "rocketchat", (body_json(body) or {}).get("error") or "")


def _channel(url: ParsedURL, fragment: str) -> str:
    if fragment:
        return f"#{fragment}"
    if len(url.path) < 3:
        return ""
    target = url.path[2]
    # "%23ops" in the path arrives as "#ops": a channel named already
    return target if target.startswith(("@", "#")) else f"#{target}"


def create(spec: ChannelSpec, deps: ChannelDeps) -> RocketchatChannel:
    opts = Options(spec, "rocketchat")
    api_base = opts.string("api_base")
    opts.done()
    url = channel_url(spec, "rocketchat")
    assert url is not None
    fragment = plain_fragment(url)
    if not url.host:
        raise ChannelConfigError(
            "rocketchat URL has no host: write rocketchat://host/TOKEN_A/TOKEN_B"
        )
    if len(url.path) < 2:
        raise ChannelConfigError(
            "rocketchat URL does not include enough arguments: write "
            "rocketchat://[sender@]host[:port]/TOKEN_A/TOKEN_B[/channel] "
            "(the two parts of the webhook token, .../hooks/TOKEN_A/TOKEN_B)"
        )
    return RocketchatChannel(
        spec.name,
        deps.http,
        base=base_url(api_base, url.base("https")),
        token_a=url.path[0],
        token_b=url.path[1],
        username=url.user or "",
        channel=_channel(url, fragment),
        timeout=timeout_of(spec, deps),
    )


def warnings(spec: ChannelSpec) -> list[str]:
    """Query keys shoutrrr ignores for rocketchat: accepted, but they do nothing."""
    try:
        url = channel_url(spec, "rocketchat")
    except ChannelConfigError:
        return []  # reported as a problem
    if url is None or not url.query:
        return []
    keys = ", ".join(repr(key) for key in sorted(url.query))
    return [
        f"rocketchat channel {spec.name!r}: query key(s) {keys} have no effect "
        "(rocketchat URLs take none; shoutrrr ignores them too): remove them"
    ]
