"""``ntfy``: publish to an ntfy topic, ``ntfy://[user:pass@]host/topic``.

The body is the plain text; title, priority, tags and click URL travel in
headers (RFC 2047-encoded when they are not ASCII). Priority and tags follow
the severity (debug 2, info 3, warning and error 4, critical 5) unless the
URL's ``priority=`` / ``tags=`` fix them. ``ntfy://:TOKEN@host/topic`` sends an
access token instead of a user name and password.
"""

from __future__ import annotations

import base64
from email.header import Header

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import severity_look
from ._http import HttpChannel, PlannedRequest
from ._options import Options, channel_url, timeout_of
from .base import ChannelDeps, Message

__all__ = ["DEFAULT_HOST", "NtfyChannel", "create"]

DEFAULT_HOST = "ntfy.sh"
_URL_KEYS = (
    "title",
    "priority",
    "tags",
    "click",
    "icon",
    "markdown",
    "scheme",
    "email",
    "delay",
    "cache",
    "firebase",
    "actions",
    "attach",
    "filename",
    "disabletls",
)
# Filled from the message and the URL's documented options, never secret.
_SHOWN = frozenset({
    "title", "priority", "tags", "click", "icon", "email", "delay",
    "markdown", "cache", "firebase", "actions", "attach", "filename",
})  # fmt: skip
_PRIORITY_NAMES = {"min": 1, "low": 2, "default": 3, "high": 4, "max": 5, "urgent": 5}


def _header(value: str) -> str:
    try:
        value.encode("ascii")
    except UnicodeEncodeError:
        return Header(value, "utf-8").encode()
    return value


class NtfyChannel(HttpChannel):
    type = "ntfy"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        base: str,
        topic: str,
        auth: str | None = None,
        priority: int | None = None,
        tags: str | None = None,
        extra_headers: dict[str, str] | None = None,
        title_prefix: str = "",
        timeout: float = 15.0,
        secrets: list[str],
    ) -> None:
        super().__init__(name, http, timeout, secrets)
        self.base = base
        self.topic = topic
        self._auth = auth
        self._priority = priority
        self._tags = tags
        self._extra = extra_headers or {}
        self._title_prefix = title_prefix

    def describe(self) -> str:
        auth = " (authenticated)" if self._auth else ""
        return f"ntfy {self.base}/{self.mask(self.topic)}{auth}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        title = f"{self._title_prefix}: {message.title}" if self._title_prefix else message.title
        look = severity_look(message)
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            "Title": _header(title),
            "Priority": str(self._priority or look.ntfy_priority),
            "Tags": _header(self._tags or look.ntfy_tags),
            **self._extra,
        }
        if message.link and "Click" not in headers:
            headers["Click"] = message.link
        if self._auth:
            headers["Authorization"] = self._auth
        body = message.body or message.title
        return [
            PlannedRequest(
                "POST",
                f"{self.base}/{self.topic}",
                headers=headers,
                content=body,
                secrets=self._secrets,
                shown_headers=_SHOWN,
            )
        ]


def _priority(value: str | None) -> int | None:
    if not value:
        return None
    text = value.strip().lower()
    number = _PRIORITY_NAMES.get(text) or (int(text) if text.isdigit() else 0)
    if not 1 <= number <= 5:
        raise ChannelConfigError(
            f"ntfy priority {value!r} is not valid: use 1-5 or min, low, default, high, max"
        )
    return number


def create(spec: ChannelSpec, deps: ChannelDeps) -> NtfyChannel:
    opts = Options(spec, "ntfy")
    opts.done()
    url = channel_url(spec, "ntfy")
    assert url is not None
    url.check_keys(_URL_KEYS)
    if not url.path:
        raise ChannelConfigError("ntfy URL has no topic: write ntfy://ntfy.sh/TOPIC")
    scheme = (url.get("scheme") or "https").lower()
    if scheme not in {"http", "https"}:
        raise ChannelConfigError(f"ntfy scheme {scheme!r} must be http or https")
    if url.flag("disabletls", False):  # shoutrrr: forces http whatever scheme= says
        scheme = "http"
    *prefix, topic = url.path
    base = url.base(scheme, *prefix, host=url.host or DEFAULT_HOST)
    auth = None
    secrets: list[str] = []
    if url.password and not url.user:
        auth = f"Bearer {url.password}"
        secrets.append(url.password)
    elif url.user or url.password:
        pair = f"{url.user or ''}:{url.password or ''}"
        auth = "Basic " + base64.b64encode(pair.encode()).decode()
        secrets += [url.password or "", auth.split(" ", 1)[1]]
    extra = {}
    for key, header in (
        ("click", "Click"),
        ("icon", "Icon"),
        ("email", "Email"),
        ("delay", "Delay"),
        ("attach", "Attach"),
        ("filename", "Filename"),
        ("actions", "Actions"),
    ):
        if url.get(key):
            extra[header] = _header(url.get(key) or "")
    if url.get("markdown") is not None and url.flag("markdown", False):
        extra["Markdown"] = "yes"
    if url.get("cache") is not None and not url.flag("cache", True):
        extra["Cache"] = "no"
    if url.get("firebase") is not None and not url.flag("firebase", True):
        extra["Firebase"] = "no"
    return NtfyChannel(
        spec.name,
        deps.http,
        base=base,
        topic=topic,
        auth=auth,
        priority=_priority(url.get("priority")),
        tags=url.get("tags") or None,
        extra_headers=extra,
        title_prefix=url.get("title") or "",
        timeout=timeout_of(spec, deps),
        secrets=secrets,
    )
