"""``generic``: any HTTP endpoint, ``generic://host/path`` or ``generic+https://host/path``.

Query keys eventbus understands are consumed; ``@Name=value`` adds a header
(its value masked wherever the channel is shown, but for Content-Type, Accept
and User-Agent), ``$key=value`` adds a JSON field (with ``template=json``),
``__key=value`` (shoutrrr's escape; ``_key`` as its docs write it) forwards
a reserved key, and every other key is forwarded to the endpoint unchanged.
Header names are spelt as shoutrrr does (``@acceptLanguage`` is
``Accept-Language``).
Unlike shoutrrr, plain text is sent as ``text/plain``: JSON is only claimed
for a JSON body (``template=json``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import headline, plain_text
from ._http import SHOWN_HEADERS, HttpChannel, PlannedRequest
from ._options import Options, channel_url, timeout_of
from .base import ChannelDeps, Message
from .urls import ParsedURL

__all__ = ["GenericChannel", "create"]

_RESERVED = ("template", "titlekey", "messagekey", "contenttype", "method", "disabletls", "title")
_METHODS = ("POST", "PUT", "PATCH", "GET", "DELETE")
_SECRET_WORDS = ("auth", "token", "key", "secret", "signature", "password", "sig", "apikey")


def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


class GenericChannel(HttpChannel):
    type = "generic"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        endpoint: str,
        method: str = "POST",
        json_template: bool = False,
        title_key: str = "title",
        message_key: str = "message",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        extra_fields: dict[str, str] | None = None,
        title_prefix: str = "",
        timeout: float = 15.0,
        secrets: list[str],
    ) -> None:
        super().__init__(name, http, timeout, secrets)
        self.endpoint = endpoint
        self.method = method
        self.json_template = json_template
        self._title_key = title_key
        self._message_key = message_key
        self._content_type = content_type
        self._headers = headers or {}
        self._extra = extra_fields or {}
        self._title_prefix = title_prefix

    def describe(self) -> str:
        return f"generic {self.method} {self.mask(self.endpoint.split('?', 1)[0])}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        title = headline(message, self._title_prefix)
        headers = dict(self._headers)
        if self.json_template:
            body: dict[str, Any] = {
                **self._extra,
                self._title_key: title,
                self._message_key: message.body or title,
            }
            headers.setdefault("Content-Type", self._content_type or "application/json")
            return [
                PlannedRequest(
                    self.method, self.endpoint, headers=headers, json=body, secrets=self._secrets
                )
            ]
        text = plain_text(message).replace(message.title, title, 1)
        headers.setdefault("Content-Type", self._content_type or "text/plain; charset=utf-8")
        return [
            PlannedRequest(
                self.method, self.endpoint, headers=headers, content=text, secrets=self._secrets
            )
        ]


def _header_name(name: str) -> str:
    """shoutrrr's header spelling (custom_query.go): ``acceptLanguage`` -> ``Accept-Language``."""
    out = []
    for index, char in enumerate(name):
        after_dash = index == 0 or name[index - 1] == "-"
        if char.isupper() and not after_dash:
            out.append("-")
        out.append(char.upper() if after_dash else char)
    return "".join(out)


def _unescaped(key: str) -> str:
    """A forwarded key: ``__template`` (shoutrrr's escape) or ``_template`` is ``template``."""
    bare = key.removeprefix("__") if key.startswith("__") else key.removeprefix("_")
    return bare if bare != key and bare.lower() in _RESERVED else key


def _endpoint(url: ParsedURL, forwarded: list[tuple[str, str]]) -> str:
    if url.subscheme:
        scheme = url.subscheme
        if scheme not in {"http", "https"}:
            raise ChannelConfigError(
                f"generic+{scheme}:// is not supported: use generic+https:// or generic+http://"
            )
    else:
        scheme = "http" if url.flag("disabletls", False) else "https"
    if not url.host:
        raise ChannelConfigError("generic URL has no host: write generic://host/path")
    endpoint = url.base(scheme, "/".join(url.path))
    if forwarded:
        endpoint += "?" + urlencode(forwarded)
    return endpoint


@dataclass(slots=True)
class _Query:
    """A generic URL's query: ``@Header``s, ``$field``s, forwarded keys, secrets."""

    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    forwarded: list[tuple[str, str]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    @classmethod
    def split(cls, url: ParsedURL) -> _Query:
        query = cls()
        for key, value in url.raw_query:
            if key.startswith("@") and len(key) > 1:
                query.headers[_header_name(key[1:])] = value
                # Operators put tokens in headers under any name: mask them all
                # but the few that never carry one.
                if key[1:].lower() not in SHOWN_HEADERS:
                    query.secrets.append(value)
            elif key.startswith("$") and len(key) > 1:
                query.extra[key[1:]] = value
            elif key.lower() in _RESERVED:
                continue
            else:
                query.forwarded.append((_unescaped(key), value))
                if _looks_secret(key):
                    query.secrets.append(value)
        return query


def create(spec: ChannelSpec, deps: ChannelDeps) -> GenericChannel:
    opts = Options(spec, "generic")
    opts.done()
    url = channel_url(spec, "generic")
    assert url is not None
    query = _Query.split(url)
    headers, extra, secrets = query.headers, query.extra, query.secrets
    template = (url.get("template") or "").lower()
    if template not in {"", "json"}:
        raise ChannelConfigError(
            f"generic template {template!r} is not supported: use template=json or leave it out"
        )
    content_type = url.get("contenttype") or None
    if not template and content_type and "json" in content_type.lower():
        raise ChannelConfigError(
            "generic contenttype is JSON but the body would be plain text: add template=json"
        )
    # shoutrrr drops $field=value from a plain-text body; url_warnings says so
    method = (url.get("method") or "POST").upper()
    if method not in _METHODS:
        raise ChannelConfigError(
            f"generic method {method!r} is not supported: use POST, PUT, PATCH, GET or DELETE"
        )
    if url.user or url.password:
        pair = f"{url.user or ''}:{url.password or ''}"
        encoded = base64.b64encode(pair.encode()).decode()
        headers.setdefault("Authorization", f"Basic {encoded}")
        secrets += [url.password or "", encoded]
    endpoint = _endpoint(url, query.forwarded)
    for key in ("titlekey", "messagekey"):
        if url.get(key) == "":
            raise ChannelConfigError(f"generic {key} must not be empty")
    return GenericChannel(
        spec.name,
        deps.http,
        endpoint=endpoint,
        method=method,
        json_template=template == "json",
        title_key=url.get("titlekey") or "title",
        message_key=url.get("messagekey") or "message",
        content_type=content_type,
        headers=headers,
        extra_fields=extra,
        title_prefix=url.get("title") or "",
        timeout=timeout_of(spec, deps),
        secrets=secrets,
    )
