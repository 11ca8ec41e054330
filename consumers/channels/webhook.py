"""``webhook``: POST the event envelope as JSON, signed per Standard Webhooks.

Receivers verify deliveries with any Standard Webhooks library: the channel
sends ``webhook-id`` (the delivery id, the same on every retry, so receivers
can deduplicate), ``webhook-timestamp`` and ``webhook-signature``, an HMAC
over ``"{id}.{timestamp}.{body}"``. Several secrets may be configured while a
receiver rotates its secret; each one adds a signature, so the receiver
accepts deliveries under the old and the new secret alike.

YAML::

    - name: ops-hook
      type: webhook
      url: https://hooks.example.com/eventbus
      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw   # or a list, for rotation
      headers: {X-Team: ops}
      timeout: 10s
      show_path: false   # true shows the whole URL path in logs, records and the CLI

An alert's notification (``Message.alert``) posts ``alert_document``
instead: ``{"type": "eventbus.alert", "transition": ..., "alert": {...},
"event": <envelope>}``, signed the same way.

Receivers often put a capability token in the path, so wherever the target
is shown (logs, delivery records, ``channels list``, ``config check``, the
API) it is ``scheme://host[:port]/first-segment/***`` unless ``show_path``.
Credentials in the URL (``https://user:pass@host/...``) are sent as a Basic
``Authorization`` header.

The channel never follows redirects (a 3xx is a permanent failure that names
the new location) and never raises for a failed delivery: every outcome is a
``SendResult`` whose error text is free of the URL's credentials, query
string, custom header values and secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import httpx
from pydantic import SecretStr

from eventbus.errors import ChannelConfigError
from eventbus.redaction import MASK
from eventbus.settings import ChannelSpec, SecuritySettings

from ..netguard import ForbiddenTarget, TargetPolicy, check_url_host
from ._format import alert_fields
from ._http import USER_AGENT, HttpChannel, PlannedRequest, basic_auth, without_credentials
from ._options import unknown_options
from ._suggest import SuggestingError
from .base import EXCERPT_BYTES, ChannelDeps, Message, SendResult
from .outcomes import result_from_response

__all__ = [
    "ALERT_TYPE",
    "OPTIONS",
    "SECRET_PREFIX",
    "WebhookChannel",
    "alert_document",
    "create",
    "decode_secret",
    "describe_url",
    "sign",
    "warnings",
]

ALERT_TYPE: Final = "eventbus.alert"
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix, not a secret)
OPTIONS: Final = frozenset({"secret", "headers", "show_path"})
# Path segments at least this long are masked in error texts as well.
_SECRET_SEGMENT: Final = 8

# Set by the channel; a custom header may not replace them.
_RESERVED_HEADERS: Final = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "content-length",
        "transfer-encoding",
        "host",
    }
)
# Set by the channel from the delivery, never secret (urls verify shows them).
_SHOWN: Final = frozenset({"webhook-id", "webhook-timestamp"})
_TOKEN_RE: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# What httpx leaves in a host after IDNA encoding; it percent-encodes the rest.
_HOST_RE: Final = re.compile(r"^[A-Za-z0-9_.-]+$")


def alert_document(message: Message) -> bytes:
    """The body of an alert's notification: the transition, the alert, the envelope.

    ``{"type": "eventbus.alert", "transition": "resolved", "alert": {...},
    "event": {...}}``; ``alert`` is ``_format.alert_fields``, ``event`` the
    envelope as published (the one that raised, touched or resolved it).
    """
    assert message.alert is not None
    document = {
        "type": ALERT_TYPE,
        "transition": message.alert.transition,
        "alert": alert_fields(message.alert),
        "event": json.loads(message.event.to_json()),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret_key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``webhook-signature`` entry: ``v1,<base64 HMAC-SHA256>``.

    ``secret_key`` is the decoded key (the bytes after ``whsec_``, see
    ``decode_secret``); the signed content is ``"{msg_id}.{timestamp}.{body}"``.
    """
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def describe_url(url: httpx.URL, *, show_path: bool = False) -> str:
    """``scheme://host[:port]/first-segment/***``: no credentials, no query string.

    Only the first path segment is kept (``/services``, ``/hooks``), since
    receivers often put a capability token in the rest; ``show_path`` keeps
    the whole path.
    """
    host = url.host
    if ":" in host:
        host = f"[{host}]"
    port = f":{url.port}" if url.port is not None else ""
    path = url.path
    if not show_path:
        first, slash, rest = path.lstrip("/").partition("/")
        path = f"/{first}" + (f"/{MASK}" if rest else slash)
    return f"{url.scheme}://{host}{port}{path}"


def _path_secrets(url: httpx.URL) -> list[str]:
    """The hidden part of the path and its long segments, for masking error texts."""
    rest = url.path.lstrip("/").partition("/")[2]
    if not rest:
        return []
    segments = [seg for seg in rest.split("/") if len(seg) >= _SECRET_SEGMENT]
    return [rest, *segments]


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_...`` secret; ``ValueError`` (never echoing it) if bad."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"it does not start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    # Accept unpadded base64, as the reference library does.
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {SECRET_PREFIX!r} is not valid base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"it decodes to {len(key)} bytes, not 24-64")
    return key


class WebhookChannel(HttpChannel):
    """Sends envelopes to one URL. Build it with ``create()``."""

    type = "webhook"
    # Only an excerpt of the answer is kept: a huge body is never buffered.
    read_limit = EXCERPT_BYTES

    def __init__(
        self,
        name: str,
        *,
        url: httpx.URL,
        keys: Sequence[bytes],
        headers: Mapping[str, str],
        timeout: float,
        http: httpx.AsyncClient,
        redact: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
        show_path: bool = False,
    ) -> None:
        super().__init__(name, http, timeout, redact)
        self._url = url
        self._show_path = show_path
        self._keys = tuple(keys)
        self._headers = dict(headers)
        self._clock = clock

    def __repr__(self) -> str:
        return (
            f"<WebhookChannel name={self.name!r} target={self.describe()!r} "
            f"secrets={len(self._keys)}>"
        )

    def describe(self) -> str:
        """The target as ``describe_url`` shows it (the path masked unless ``show_path``)."""
        return describe_url(self._url, show_path=self._show_path)

    def signed_headers(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """Every header of one request (custom ones first, ours override)."""
        headers = {
            **self._headers,
            "content-type": "application/json",
            "user-agent": self._headers.get("user-agent", USER_AGENT),
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
        }
        if self._keys:
            headers["webhook-signature"] = " ".join(
                sign(key, msg_id, timestamp, body) for key in self._keys
            )
        return headers

    def plan(self, message: Message) -> list[PlannedRequest]:
        # A digest (consumers.digests) posts its own document, signed the same way.
        document = getattr(message, "document", None)
        if isinstance(document, bytes):
            body = document
        elif message.alert is not None:
            body = alert_document(message)
        else:
            body = message.event.to_json().encode()
        headers = self.signed_headers(message.delivery_id, int(self._clock()), body)
        return [
            PlannedRequest(
                "POST",
                self._url,
                headers=headers,
                content=body,
                secrets=self._secrets,
                shown_headers=_SHOWN,
            )
        ]

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        # A receiver's 429 follows the plain table (retryable), as for any URL.
        return result_from_response(response, latency, body=body)


# --- configuration ---------------------------------------------------------


def _error(spec: ChannelSpec, text: str) -> ChannelConfigError:
    return ChannelConfigError(f"webhook channel {spec.name!r}: {text}")


def _secret_values(spec: ChannelSpec) -> list[str]:
    raw = spec.options.get("secret")
    if raw is None:
        return []
    items: list[Any] = list(raw) if isinstance(raw, list | tuple) else [raw]
    if not items:
        raise _error(spec, "'secret' is an empty list: remove it or list at least one secret")
    values: list[str] = []
    for item in items:
        if isinstance(item, SecretStr):
            item = item.get_secret_value()
        if not isinstance(item, str):
            raise _error(
                spec,
                f"'secret' entries must be strings like 'whsec_...', got {type(item).__name__}",
            )
        values.append(item.strip())
    return values


def _keys(spec: ChannelSpec, values: Sequence[str]) -> list[bytes]:
    keys: list[bytes] = []
    for index, value in enumerate(values, start=1):
        which = f"secret #{index}" if len(values) > 1 else "secret"
        try:
            keys.append(decode_secret(value))
        except ValueError as exc:
            raise _error(
                spec,
                f"{which} is not a valid Standard Webhooks secret ({exc}): expected "
                f"{SECRET_PREFIX!r} followed by the base64 of 24-64 random bytes, e.g. from "
                "`python -c \"import os,base64;print('whsec_'+base64.b64encode(os.urandom(32))"
                '.decode())"`',
            ) from None
    return keys


def _headers(spec: ChannelSpec) -> dict[str, str]:
    raw = spec.options.get("headers")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _error(spec, "'headers' must be a map of header name to value")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _TOKEN_RE.match(name):
            raise _error(spec, f"header name {name!r} is not a valid HTTP header name")
        lowered = name.lower()
        if lowered in _RESERVED_HEADERS:
            raise _error(
                spec,
                f"header {name!r} is set by the channel and cannot be configured: remove it",
            )
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _error(spec, f"header {name!r} must have a string value")
        text = str(value)
        if any(c in text for c in "\r\n\0"):
            # Value not shown: it may be a token.
            raise _error(spec, f"header {name!r} contains a line break or NUL character")
        headers[lowered] = text
    return headers


def _show_path(spec: ChannelSpec) -> bool:
    value = spec.options.get("show_path", False)
    if not isinstance(value, bool):
        raise _error(spec, f"'show_path' must be true or false, not {type(value).__name__}")
    return value


def _shown(spec: ChannelSpec, raw: str) -> str:
    """The configured URL as error texts may show it (``describe_url``, else a placeholder)."""
    try:
        return describe_url(httpx.URL(raw), show_path=spec.options.get("show_path") is True)
    except httpx.InvalidURL:
        return "<the configured url>"


def _url(spec: ChannelSpec, security: SecuritySettings) -> tuple[httpx.URL, list[str]]:
    if spec.url is None:
        raise _error(spec, "'url' is required, e.g. url: https://hooks.example.com/eventbus")
    raw = spec.url.get_secret_value().strip()
    shown = _shown(spec, raw)
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as exc:
        # httpx's message names the part at fault, never the value.
        raise _error(spec, f"url {shown!r} is not a valid URL ({exc})") from None
    secrets = [url.query.decode("ascii", "replace")]
    secrets += [v for _, v in url.params.multi_items()]
    if url.password:
        secrets.append(url.password)
    # Each hidden part is masked on its own (not the URL whole), so texts that
    # quote the URL still show what describe() shows.
    if spec.options.get("show_path") is not True:
        secrets += _path_secrets(url)
    if url.scheme not in ("http", "https"):
        raise _error(spec, f"url {shown!r} must start with https:// (or http://)")
    if not url.host:
        raise _error(spec, f"url {shown!r} has no host")
    if ":" not in url.host and not _HOST_RE.match(url.host):
        raise _error(
            spec,
            f"url {shown!r}: {url.host!r} is not a valid host name (percent-encode "
            "special characters in the user name or password, not in the host)",
        )
    try:
        check_url_host(url.host, TargetPolicy(security))
    except ForbiddenTarget as exc:
        raise _error(spec, f"url {shown!r}: {exc}") from None
    return url, secrets


def create(spec: ChannelSpec, deps: ChannelDeps) -> WebhookChannel:
    """Build a webhook channel; ``ChannelConfigError`` names what is wrong."""
    unknown = sorted(set(spec.options) - OPTIONS)
    if unknown:
        error = unknown_options("webhook", unknown, sorted(OPTIONS))
        raise SuggestingError(f"webhook channel {spec.name!r}: {error}", error.fix)
    url, url_secrets = _url(spec, deps.security)
    secret_values = _secret_values(spec)
    keys = _keys(spec, secret_values)
    headers = _headers(spec)
    show_path = _show_path(spec)
    if url.userinfo:
        if "authorization" in headers:
            raise _error(
                spec,
                "both the url's user:password and an Authorization header are set: keep one",
            )
        # Sent as a header from the start, so the planned request (urls verify)
        # is the one made, and no transport sees credentials in the URL.
        headers["authorization"] = basic_auth(url.username, url.password)
        url_secrets.append(headers["authorization"].removeprefix("Basic "))
        url = without_credentials(url)
    timeout = spec.timeout if spec.timeout is not None else deps.timeout
    return WebhookChannel(
        spec.name,
        url=url,
        keys=keys,
        headers=headers,
        timeout=timeout,
        http=deps.http,
        redact=[*url_secrets, *secret_values, *headers.values()],
        show_path=show_path,
    )


def warnings(spec: ChannelSpec) -> list[str]:
    """Advice for ``eventbus config check`` about a valid webhook definition."""
    found: list[str] = []
    if not spec.options.get("secret"):
        found.append(
            f"webhook channel {spec.name!r} has no secret: receivers cannot verify that "
            "deliveries come from eventbus; add secret: whsec_... (shared with the receiver)"
        )
    if spec.url is not None:
        raw = spec.url.get_secret_value().strip()
        if raw.lower().startswith("http://"):
            found.append(
                f"webhook channel {spec.name!r} sends to {_shown(spec, raw)!r} "
                "over plain http: events and signatures travel unencrypted; use https://"
            )
    return found
