"""``signal``: a signal-cli REST API server, ``signal://[user:pass@]host[:port]/SOURCE/RECIPIENT...``.

The server (bbernhard/signal-cli-rest-api or a proxy in front of it, such as
secured-signal-api) sends through a Signal account registered on it: ``SOURCE``
is that account's number, recipients are phone numbers (``+15551234567``) or
groups (``group.<base64 id>``; a group id may contain ``/``, so it may span
path segments, as in shoutrrr). One ``POST /v2/send`` carries every recipient.

Every key of shoutrrr's config may also be given in the query (``host``,
``port``, ``user``, ``password``, ``token`` / ``apikey``, ``source``,
``recipients`` / ``to``, ``disabletls``). HTTPS on port 8080 unless the URL
says otherwise; ``?token=`` sends a Bearer token instead of Basic auth.
"""

from __future__ import annotations

import re
from typing import Final

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import tagged_text
from ._http import HttpChannel, PlannedRequest, basic_auth
from ._options import Options, base_url, channel_url, timeout_of
from .base import ChannelDeps, Message
from .urls import ParsedURL, split_list

__all__ = ["DEFAULT_PORT", "SignalChannel", "create", "parse_recipients"]

DEFAULT_PORT: Final = 8080
_URL_KEYS = (
    "host", "port", "user", "password", "token", "apikey",
    "source", "recipients", "to", "disabletls",
)  # fmt: skip
# shoutrrr's own patterns (pkg/services/chat/signal/signal_config.go)
_PHONE = re.compile(r"^\+?[0-9\s)(+-]+$")
_GROUP = re.compile(r"^group\.[a-zA-Z0-9_+/=-]+$")
_EXAMPLE = "signal://host:8080/+15551234567/+15557654321"


class SignalChannel(HttpChannel):
    type = "signal"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        base: str,
        source: str,
        recipients: list[str],
        auth: str | None = None,
        timeout: float = 15.0,
        secrets: list[str],
    ) -> None:
        super().__init__(name, http, timeout, secrets)
        self.base = base
        self.source = source
        self.recipients = recipients
        self._auth = auth

    def describe(self) -> str:
        count = len(self.recipients)
        auth = " (authenticated)" if self._auth else ""
        return f"signal {self.base} from {self.source} to {count} recipient(s){auth}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        headers = {"Content-Type": "application/json"}
        if self._auth:
            headers["Authorization"] = self._auth
        body = {
            "message": tagged_text(message),
            "number": self.source,
            "recipients": self.recipients,
        }
        return [
            PlannedRequest(
                "POST", f"{self.base}/v2/send", headers=headers, json=body, secrets=self._secrets
            )
        ]


def parse_recipients(segments: list[str]) -> list[str]:
    """Recipients from path segments; a ``group.`` id goes on until the next ``+`` number."""
    recipients: list[str] = []
    group: str | None = None
    for segment in segments:
        if segment.startswith("group."):
            if group is not None:
                recipients.append(group)
            group = segment
        elif group is not None and not segment.startswith("+"):
            group += "/" + segment
        else:
            if group is not None:
                recipients.append(group)
                group = None
            recipients.append(segment)
    if group is not None:
        recipients.append(group)
    for recipient in recipients:
        if not (_PHONE.match(recipient) or _GROUP.match(recipient)):
            raise ChannelConfigError(
                f"signal recipient {recipient!r} is neither a phone number (+15551234567) "
                "nor a group id (group.<id>)"
            )
    return recipients


def _host_port(url: ParsedURL) -> tuple[str, int]:
    host = url.get("host") or url.host or "localhost"
    port_text = url.get("port")
    if port_text is None:
        return host, url.port or DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ChannelConfigError(f"signal URL: port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def _auth(url: ParsedURL) -> tuple[str | None, list[str]]:
    """The Authorization value (a token wins over user and password) and what to mask."""
    token = url.get("token") or url.get("apikey")
    if token:
        return f"Bearer {token}", [token]
    user = url.get("user") if url.get("user") is not None else url.user
    password = url.get("password") if url.get("password") is not None else url.password
    if not user:
        return None, []
    value = basic_auth(user, password or "")
    return value, [password or "", value.removeprefix("Basic ")]


def create(spec: ChannelSpec, deps: ChannelDeps) -> SignalChannel:
    opts = Options(spec, "signal")
    api_base = opts.string("api_base")
    opts.done()
    url = channel_url(spec, "signal")
    assert url is not None
    url.check_keys(_URL_KEYS)
    segments = list(url.path)
    if len(segments) < 2:
        raise ChannelConfigError(
            f"signal URL needs the source number and at least one recipient: write {_EXAMPLE}"
        )
    source = url.get("source") or segments[0]
    if not _PHONE.match(segments[0]) or not _PHONE.match(source):
        raise ChannelConfigError(
            f"signal source {segments[0]!r} (the first path segment) is not a phone number: "
            f"write {_EXAMPLE}"
        )
    recipients = parse_recipients(segments[1:])
    if url.get("recipients") is not None or url.get("to") is not None:
        recipients = parse_recipients(split_list(url.get("recipients") or url.get("to")))
    if not recipients:
        raise ChannelConfigError(f"signal URL has no recipients: write {_EXAMPLE}")
    host, port = _host_port(url)
    scheme = "http" if url.flag("disabletls", False) else "https"
    default = f"{scheme}://{host}:{port}"
    auth, secrets = _auth(url)
    return SignalChannel(
        spec.name,
        deps.http,
        base=base_url(api_base, default),
        source=source,
        recipients=recipients,
        auth=auth,
        timeout=timeout_of(spec, deps),
        secrets=secrets,
    )
