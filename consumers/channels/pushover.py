"""``pushover``: ``pushover://shoutrrr:APITOKEN@USERKEY/?devices=a,b``.

Pushover limits a message to 1024 characters and a title to 250; longer
text is cut with an ellipsis (the link, if any, travels in ``url``). The
priority follows the severity (debug -1, info and warning 0, error 1,
critical 2, the emergency priority, repeated every minute for an hour until
acknowledged) unless the URL's ``priority=`` fixes it.
"""

from __future__ import annotations

import re

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import severity_look
from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, base_url, channel_url, timeout_of
from .base import ChannelDeps, Message, SendResult
from .urls import split_list

__all__ = ["DEFAULT_API_BASE", "PushoverChannel", "create"]

DEFAULT_API_BASE = "https://api.pushover.net"
MESSAGE_MAX = 1024
TITLE_MAX = 250
_URL_KEYS = ("devices", "priority", "title")
_HEX64 = re.compile(r"^[0-9A-Fa-f]{64}$")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class PushoverChannel(HttpChannel):
    type = "pushover"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        token: str,
        user: str,
        devices: list[str],
        priority: int | None = None,
        title_prefix: str = "",
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [token, user])
        self._token = token
        self._user = user
        self.devices = devices
        self._priority = priority
        self._title_prefix = title_prefix
        self.api_base = api_base

    def describe(self) -> str:
        devices = f" devices {', '.join(self.devices)}" if self.devices else ""
        where = "" if self.api_base == DEFAULT_API_BASE else f" via {self.api_base}"
        return f"pushover user ***{devices}{where}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        title = f"{self._title_prefix}: {message.title}" if self._title_prefix else message.title
        priority = self._priority
        if priority is None:
            priority = severity_look(message).pushover_priority
        form = {
            "token": self._token,
            "user": self._user,
            "title": _cut(title, TITLE_MAX),
            "message": _cut(message.body or message.title, MESSAGE_MAX),
            "priority": str(priority),
            "timestamp": str(int(message.event.timestamp.timestamp())),
        }
        if priority == 2:  # emergency priority requires a repeat schedule
            form.update(retry="60", expire="3600")
        if self.devices:
            form["device"] = ",".join(self.devices)
        if message.link:
            form["url"] = message.link[:512]
        return [
            PlannedRequest(
                "POST", f"{self.api_base}/1/messages.json", form=form, secrets=self._secrets
            )
        ]

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        result = provider_result(response, latency)
        if result.ok or response.status_code >= 500:
            return result
        try:
            errors = response.json().get("errors")
        except (ValueError, AttributeError):
            errors = None
        if isinstance(errors, list) and errors:
            detail = "; ".join(str(e) for e in errors)[:300]
            return SendResult(
                result.outcome,
                status=result.status,
                latency=latency,
                retry_after=result.retry_after,
                response_excerpt=result.response_excerpt,
                error=f"{result.error}: pushover says {detail}",
            )
        return result


def create(spec: ChannelSpec, deps: ChannelDeps) -> PushoverChannel:
    opts = Options(spec, "pushover")
    api_base = base_url(opts.string("api_base"), DEFAULT_API_BASE)
    opts.done()
    url = channel_url(spec, "pushover")
    assert url is not None
    url.check_keys(_URL_KEYS)
    if not url.password:
        raise ChannelConfigError(
            "pushover URL has no API token: write pushover://shoutrrr:APITOKEN@USERKEY/"
        )
    if not url.host:
        raise ChannelConfigError(
            "pushover URL has no user key: write pushover://shoutrrr:APITOKEN@USERKEY/"
        )
    key = url.get("encryptionkey") or ""
    if key and not _HEX64.match(key):
        raise ChannelConfigError(
            "pushover encryptionkey must be 64 hexadecimal characters (a 256-bit AES key)"
        )
    return PushoverChannel(
        spec.name,
        deps.http,
        token=url.password,
        user=url.host,
        devices=split_list(url.get("devices")),
        priority=url.integer("priority", -2, 2),
        title_prefix=url.get("title") or "",
        api_base=api_base,
        timeout=timeout_of(spec, deps),
    )
