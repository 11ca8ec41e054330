"""What the HTTP-based channels share: one way to plan, send and classify.

A channel first *plans* its request(s) for a message (``plan()``), then
performs them; ``eventbus urls verify`` shows the same plan without sending.
Requests are made in one place (``HttpChannel.call``), failures are mapped by
``outcomes``' one table, and every text that leaves a channel (errors,
response excerpts, planned requests) goes through the channel's ``Redactor``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final, cast

import httpx

from eventbus import __version__
from eventbus.redaction import MASK, Redactor

from ..outbound import OutboundClient
from .base import Message, OutcomeClass, SendResult
from .outcomes import CAUGHT_ERRORS, error_result, result_from_response
from .pacing import NO_PACER, Pacer, refusal

__all__ = [
    "SHOWN_HEADERS",
    "USER_AGENT",
    "HttpChannel",
    "PlannedRequest",
    "basic_auth",
    "provider_result",
    "read_body",
    "without_credentials",
]

# Sent on every request of every channel (a planned header may replace it):
# receivers and providers see who calls, not "python-httpx" or "aiohttp".
USER_AGENT: Final = f"eventbus/{__version__}"

# Header values shown when a planned request is printed (``urls verify``);
# every other value is masked, since operators put tokens in headers under
# any name. A channel names the headers it fills from non-secret data itself
# in ``PlannedRequest.shown_headers``.
SHOWN_HEADERS: Final = frozenset({"content-type", "accept", "user-agent"})
# Shown as their scheme only ("Bearer ***").
_AUTH_HEADERS: Final = frozenset({"authorization", "proxy-authorization"})


@dataclass(frozen=True, slots=True, repr=False)
class PlannedRequest:
    """One request a channel would make. ``url`` and ``headers`` may hold secrets."""

    method: str
    url: str | httpx.URL
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    content: str | bytes | None = None
    form: Mapping[str, str] | None = None
    # key of a finer rate-limit bucket (Telegram: "chat:<id>"), "" for none
    rate_key: str = ""
    secrets: tuple[str, ...] = ()
    note: str = ""
    # lower-case names of headers whose values may be shown (see SHOWN_HEADERS)
    shown_headers: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"PlannedRequest({self.method} {self.safe_url()})"

    def _mask(self, text: str) -> str:
        return Redactor(self.secrets).mask(text)

    def safe_url(self) -> str:
        return self._mask(str(self.url))

    def safe_headers(self) -> dict[str, str]:
        """The headers with every value masked but ``SHOWN_HEADERS`` and ``shown_headers``."""
        shown = {}
        for name, value in self.headers.items():
            lowered = name.lower()
            if lowered in SHOWN_HEADERS or lowered in self.shown_headers:
                shown[name] = self._mask(value)
            elif lowered in _AUTH_HEADERS:
                scheme, _, rest = value.partition(" ")
                shown[name] = f"{scheme} {MASK}" if rest else MASK
            else:
                shown[name] = MASK
        return shown

    def body_kind(self) -> str:
        if self.json is not None:
            return "application/json"
        if self.form is not None:
            return "application/x-www-form-urlencoded"
        if self.content is not None:
            kinds = [v for name, v in self.headers.items() if name.lower() == "content-type"]
            return kinds[0] if kinds else "text/plain"
        return "(none)"

    def safe_body(self, limit: int = 600) -> str:
        if self.json is not None:
            text = json.dumps(self.json, ensure_ascii=False, indent=2)
        elif self.form is not None:
            text = json.dumps(dict(self.form), ensure_ascii=False, indent=2)
        elif isinstance(self.content, bytes):
            text = self.content.decode("utf-8", "replace")
        else:
            text = self.content or ""
        text = self._mask(text)
        return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


class HttpChannel:
    """Base of the HTTP channels: plan, then perform each request in order.

    Subclasses implement ``plan()`` and ``describe()`` and may override
    ``classify()`` for providers that report errors in a 200 body. A message
    that needs several requests (several chats, long text) stops at the
    first failure; a retry sends all of them again (at-least-once).

    Every request goes through ``call()``: on the daemon's ``OutboundClient``
    straight to its transport, otherwise through the client; errors become
    results through ``outcomes``' one table. Credentials in a URL become a
    Basic ``Authorization`` header there, so no layer below sees both.
    """

    type: str = ""
    # Bytes of a response body kept; None reads it whole (for classify()).
    read_limit: ClassVar[int | None] = None

    def __init__(
        self, name: str, http: httpx.AsyncClient, timeout: float, secrets: Sequence[str]
    ) -> None:
        self.name = name
        self._http = http
        self._transport = http.transport if isinstance(http, OutboundClient) else None
        self._timeout = timeout
        self._timeouts = httpx.Timeout(timeout).as_dict()
        self._secrets = tuple(s for s in secrets if s)
        self._redactor = Redactor(self._secrets)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.describe()}>"

    @property
    def redactor(self) -> Redactor:
        """What this channel masks (its secrets), for the process-wide log redaction."""
        return self._redactor

    def describe(self) -> str:
        raise NotImplementedError

    def plan(self, message: Message) -> list[PlannedRequest]:
        raise NotImplementedError

    def mask(self, text: str) -> str:
        return self._redactor.mask(text)

    def add_secret(self, secret: str) -> None:
        """Mask ``secret`` too from now on (a token learnt at run time)."""
        self._secrets = (*self._secrets, secret)
        self._redactor = self._redactor.adding(secret)

    async def send(self, message: Message) -> SendResult:
        return await self.send_paced(message, NO_PACER)

    async def send_paced(self, message: Message, pacer: Pacer) -> SendResult:
        try:
            requests = self.plan(message)
        except CAUGHT_ERRORS as exc:  # a channel never raises, not even for its own bug
            return self.masked(error_result(exc, target=self.describe(), timeout=self._timeout))
        latency = 0.0
        result = SendResult(OutcomeClass.DELIVERED)
        for index, request in enumerate(requests):
            wait = await pacer.acquire(request.rate_key, may_refuse=index == 0)
            if wait is not None:
                return refusal(self.name, wait)
            result = await self.perform(request)
            latency += result.latency
            if result.retry_after is not None and not result.ok:
                pacer.penalize(request.rate_key, result.retry_after)
            if not result.ok:
                if index:
                    note = f" (request {index + 1} of {len(requests)}; earlier ones were sent)"
                    result = replace(result, error=(result.error or "") + note)
                return replace(result, latency=latency)
        return result if len(requests) == 1 else replace(result, latency=latency)

    async def perform(self, request: PlannedRequest) -> SendResult:
        """Make one request and classify it."""
        answer = await self.call(request)
        if isinstance(answer, SendResult):
            return answer
        response, body, latency = answer
        return self.masked(self.classify(request, response, latency, body))

    async def call(
        self, planned: PlannedRequest
    ) -> tuple[httpx.Response, bytes, float] | SendResult:
        """The response, the body read (see ``read_limit``) and the latency, or a
        failed ``SendResult`` when the request raised."""
        start = time.perf_counter()
        try:
            response = await self._open(planned)
            try:
                body = await read_body(response, self.read_limit)
            finally:
                await response.aclose()
        except CAUGHT_ERRORS as exc:
            result = error_result(exc, target=self.describe(), timeout=self._timeout)
            return self.masked(replace(result, latency=time.perf_counter() - start))
        return response, body, time.perf_counter() - start

    async def _open(self, planned: PlannedRequest) -> httpx.Response:
        url = planned.url if isinstance(planned.url, httpx.URL) else httpx.URL(planned.url)
        content = planned.content.encode() if isinstance(planned.content, str) else planned.content
        form = dict(planned.form) if planned.form is not None else None
        headers = _outbound_headers(planned.headers, url)
        url = without_credentials(url)
        if self._transport is None:
            request = self._http.build_request(
                planned.method,
                url,
                headers=headers,
                json=planned.json,
                content=content,
                data=form,
                timeout=self._timeout,
            )
            return await self._http.send(request, stream=True, follow_redirects=False)
        if planned.json is None and form is None and content is not None:
            request = _bytes_request(planned.method, url, headers, content, self._timeouts)
        else:
            request = httpx.Request(
                planned.method,
                url,
                headers=headers,
                json=planned.json,
                content=content,
                data=form,
                extensions={"timeout": self._timeouts},
            )
        response = await self._transport.handle_async_request(request)
        response.request = request  # as the client does
        return response

    def masked(self, result: SendResult) -> SendResult:
        if result.error is None and result.response_excerpt is None:
            return result
        return replace(
            result,
            error=self._redactor.mask_optional(result.error),
            response_excerpt=self._redactor.mask_optional(result.response_excerpt),
        )

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        return provider_result(response, latency)


def basic_auth(username: str, password: str) -> str:
    """The ``Authorization`` value of HTTP Basic auth (RFC 7617, UTF-8)."""
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def without_credentials(url: httpx.URL) -> httpx.URL:
    """``url`` without its ``user:password@`` part."""
    return url.copy_with(userinfo=b"") if url.userinfo else url


def _outbound_headers(planned: Mapping[str, str], url: httpx.URL) -> dict[str, str]:
    """The planned headers, plus our User-Agent and the URL's credentials as Basic auth."""
    headers = dict(planned)
    names = {name.lower() for name in headers}
    if "user-agent" not in names:
        headers["User-Agent"] = USER_AGENT
    if url.userinfo and "authorization" not in names:
        headers["Authorization"] = basic_auth(url.username, url.password)
    return headers


_OWN_FRAMING: Final = frozenset({"host", "content-length", "transfer-encoding"})


def _bytes_request(
    method: str, url: httpx.URL, headers: dict[str, str], content: bytes, timeouts: Any
) -> httpx.Request:
    """The request ``httpx.Request(content=...)`` builds, without its header look-ups.

    Same headers in the same order (Host first, Content-Length last) and the
    body already read; httpx's own path looks the headers up and copies them
    three times, a third of a webhook delivery's request building. Headers
    that set the framing themselves take httpx's path.
    """
    if any(name.lower() in _OWN_FRAMING for name in headers):
        return httpx.Request(
            method, url, headers=headers, content=content, extensions={"timeout": timeouts}
        )
    framed = [("Host", url.netloc.decode("ascii")), *headers.items()]
    framed.append(("Content-Length", str(len(content))))
    request = httpx.Request(
        method,
        url,
        headers=framed,
        stream=httpx.ByteStream(content),
        extensions={"timeout": timeouts},
    )
    request.read()  # as content= does: transports may read request.content
    # httpx encoded every one of these str headers as ASCII (or raised): say so,
    # rather than have the transport's first look-up try each header again.
    request.headers.encoding = "ascii"
    return request


async def read_body(response: httpx.Response, limit: int | None) -> bytes:
    """The decoded body, or at most its first ``limit`` bytes (a huge one is never buffered)."""
    if limit is None:
        return await response.aread()
    if response.status_code in (204, 304) or response.headers.get("content-length") == "0":
        return b""  # nothing to read (the caller closes the response)
    chunks: list[bytes] = []
    size = 0
    # aiter_bytes is an async generator; close it rather than leave it to GC.
    chunks_of = cast("AsyncGenerator[bytes, None]", response.aiter_bytes())
    async with contextlib.aclosing(chunks_of) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    return b"".join(chunks)[:limit]


def provider_result(response: httpx.Response, latency: float) -> SendResult:
    """A plain HTTP classification where a 429 with a retry hint is RATE_LIMITED.

    Being throttled by the provider is not a failed attempt (DESIGN.md); a
    429 without any hint stays RETRYABLE so the normal schedule applies.
    """
    result = result_from_response(response, latency)
    if response.status_code == 429:
        retry_after = result.retry_after
        if retry_after is None:
            retry_after = _json_retry_after(response)
        if retry_after is not None:
            return replace(
                result,
                outcome=OutcomeClass.RATE_LIMITED,
                retry_after=retry_after,
                error=f"{result.error} (retry after {retry_after:g}s)",
            )
    return result


def _json_retry_after(response: httpx.Response) -> float | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("retry_after") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) and value >= 0 else None
