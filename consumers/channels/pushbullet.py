"""``pushbullet``: Pushbullet notes, ``pushbullet://TOKEN[/device/#channel/email]``.

As shoutrrr's pushbullet service (``pkg/services/push/pushbullet``): the
34-character access token is the host (sent in the ``Access-Token``
header), each path segment a target: an e-mail address, ``#channel`` (from
the URL's fragment, as Go parses it) or a device iden; no target pushes to
every device of the account. One ``POST /v2/pushes`` per target, of type
``note``. ``title=`` defaults to "Shoutrrr notification" in shoutrrr; here
it prefixes the notification's own title.

Pushbullet answers a 429 with ``X-Ratelimit-Reset`` (a Unix time), honoured
as the retry time; free accounts are also capped at 500 pushes a month.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, base_url, channel_url, timeout_of
from ._service import body_json, plain_fragment, prefixed_title, with_detail
from .base import ChannelDeps, Message, OutcomeClass, SendResult

__all__ = ["DEFAULT_API_BASE", "TOKEN_LENGTH", "PushbulletChannel", "create", "target_field"]

DEFAULT_API_BASE = "https://api.pushbullet.com"
TOKEN_LENGTH = 34
_URL_KEYS = ("title",)
_EMAIL = re.compile(r".*@.*\..*")


def target_field(target: str) -> tuple[str, str] | None:
    """The push field a target fills (shoutrrr's ``SetTarget``), None for all devices."""
    if not target:
        return None
    if _EMAIL.fullmatch(target):
        return "email", target
    if target.startswith("#"):
        return "channel_tag", target[1:]
    return "device_iden", target


class PushbulletChannel(HttpChannel):
    type = "pushbullet"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        token: str,
        targets: list[str],
        title_prefix: str = "",
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, http, timeout, [token])
        self._token = token
        self.targets = targets or [""]
        self._title_prefix = title_prefix
        self.api_base = api_base
        self._clock = clock

    def describe(self) -> str:
        shown = ", ".join(target or "all devices" for target in self.targets)
        where = "" if self.api_base == DEFAULT_API_BASE else f" via {self.api_base}"
        return f"pushbullet {shown}{where}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        body = message.body
        if message.link and message.link not in body:
            body = f"{body}\n{message.link}" if body else message.link
        requests = []
        for target in self.targets:
            push: dict[str, Any] = {
                "type": "note",
                "title": prefixed_title(self._title_prefix, message),
                "body": body,
            }
            field = target_field(target)
            if field is not None:
                push[field[0]] = field[1]
            requests.append(
                PlannedRequest(
                    "POST",
                    f"{self.api_base}/v2/pushes",
                    headers={"Content-Type": "application/json", "Access-Token": self._token},
                    json=push,
                    secrets=self._secrets,
                    note=f"to {target or 'all devices'}" if len(self.targets) > 1 else "",
                )
            )
        return requests

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        result = provider_result(response, latency)
        error = (body_json(body) or {}).get("error")
        said = error.get("message", "") if isinstance(error, dict) else ""
        if response.status_code == 429 and result.retry_after is None:
            reset = response.headers.get("x-ratelimit-reset", "")
            if reset.isdigit():
                wait = max(0.0, int(reset) - self._clock())
                result = replace(result, outcome=OutcomeClass.RATE_LIMITED, retry_after=wait)
        return with_detail(result, "pushbullet", said)


def create(spec: ChannelSpec, deps: ChannelDeps) -> PushbulletChannel:
    opts = Options(spec, "pushbullet")
    api_base = base_url(opts.string("api_base"), DEFAULT_API_BASE)
    opts.done()
    url = channel_url(spec, "pushbullet")
    assert url is not None
    fragment = plain_fragment(url)
    token = url.host
    if len(token) != TOKEN_LENGTH:
        raise ChannelConfigError(
            f"pushbullet token (the host) has {len(token)} characters, not {TOKEN_LENGTH}: "
            "write pushbullet://ACCESS_TOKEN[/device/#channel/email] with the token "
            "from your account settings (o.xxxxx...)"
        )
    url.check_keys(_URL_KEYS)
    targets = list(url.path)
    if fragment:
        # Go keeps "#channel/more" as the fragment; shoutrrr puts it back as targets.
        first, *rest = fragment.split("/")
        targets += [f"#{first}" if first else "", *rest]
    return PushbulletChannel(
        spec.name,
        deps.http,
        token=token,
        targets=[target for target in targets if target],
        title_prefix=url.get("title") or "",
        api_base=api_base,
        timeout=timeout_of(spec, deps),
    )
