"""What the HTTP-based channels share.

A channel first *plans* its request(s) for a message (``plan()``), then
performs them; ``eventbus urls verify`` shows the same plan without sending.
httpx errors are mapped to ``SendResult``s here, at the one place requests
are made, and every text that leaves a channel (errors, response excerpts,
planned requests) goes through ``mask()`` with the channel's secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import quote

import httpx

from consumers.netguard import forbidden_cause
from eventbus.errors import PermanentDeliveryError, RetryableDeliveryError

from .base import Message, OutcomeClass, SendResult, result_from_response, timed

__all__ = [
    "NO_PACER",
    "HttpChannel",
    "PacedChannel",
    "Pacer",
    "PlannedRequest",
    "mask",
    "provider_result",
]

MASK = "***"
# Secrets shorter than this are not masked: replacing every "ab" in a text
# would garble it, and such short values are not real tokens.
_MIN_SECRET = 3
_SECRET_HEADERS = frozenset({"authorization", "x-gotify-key", "proxy-authorization"})


def mask(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (raw or percent-encoded) replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) < _MIN_SECRET:
            continue
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, MASK)
    return text


@dataclass(frozen=True, slots=True, repr=False)
class PlannedRequest:
    """One request a channel would make. ``url`` and ``headers`` may hold secrets."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    content: str | None = None
    form: Mapping[str, str] | None = None
    # key of a finer rate-limit bucket (Telegram: "chat:<id>"), "" for none
    rate_key: str = ""
    secrets: tuple[str, ...] = ()
    note: str = ""

    def __repr__(self) -> str:
        return f"PlannedRequest({self.method} {self.safe_url()})"

    def safe_url(self) -> str:
        return mask(self.url, self.secrets)

    def safe_headers(self) -> dict[str, str]:
        shown = {}
        for name, value in self.headers.items():
            if name.lower() in _SECRET_HEADERS:
                scheme, _, rest = value.partition(" ")
                value = f"{scheme} {MASK}" if rest else MASK
            shown[name] = mask(value, self.secrets)
        return shown

    def body_kind(self) -> str:
        if self.json is not None:
            return "application/json"
        if self.form is not None:
            return "application/x-www-form-urlencoded"
        if self.content is not None:
            return self.headers.get("Content-Type", "text/plain")
        return "(none)"

    def safe_body(self, limit: int = 600) -> str:
        if self.json is not None:
            text = json.dumps(self.json, ensure_ascii=False, indent=2)
        elif self.form is not None:
            text = json.dumps(dict(self.form), ensure_ascii=False, indent=2)
        else:
            text = self.content or ""
        text = mask(text, self.secrets)
        return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


class Pacer(Protocol):
    """Rate limiting seen from a channel (``consumers.ratelimit`` implements it)."""

    async def acquire(self, key: str, *, may_refuse: bool) -> float | None:
        """Wait for a slot; or, if ``may_refuse`` and the wait is long, return it."""
        ...

    def penalize(self, key: str, seconds: float) -> None:
        """The provider said 429: pause the bucket(s) for ``seconds``."""
        ...


class _NoPacer:
    async def acquire(self, key: str, *, may_refuse: bool) -> float | None:
        return None

    def penalize(self, key: str, seconds: float) -> None:
        return None


NO_PACER: Pacer = _NoPacer()


@runtime_checkable
class PacedChannel(Protocol):
    """A channel whose requests can be paced one by one."""

    name: str
    type: str

    async def send_paced(self, message: Message, pacer: Pacer) -> SendResult: ...


class HttpChannel:
    """Base of the HTTP channels: plan, then perform each request in order.

    Subclasses implement ``plan()`` and ``describe()`` and may override
    ``classify()`` for providers that report errors in a 200 body. A message
    that needs several requests (several chats, long text) stops at the
    first failure; a retry sends all of them again (at-least-once).
    """

    type: ClassVar[str] = ""

    def __init__(
        self, name: str, http: httpx.AsyncClient, timeout: float, secrets: Sequence[str]
    ) -> None:
        self.name = name
        self._http = http
        self._timeout = timeout
        self._secrets = tuple(s for s in secrets if s)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.describe()}>"

    def describe(self) -> str:
        raise NotImplementedError

    def plan(self, message: Message) -> list[PlannedRequest]:
        raise NotImplementedError

    def mask(self, text: str) -> str:
        return mask(text, self._secrets)

    async def send(self, message: Message) -> SendResult:
        return await self.send_paced(message, NO_PACER)

    async def send_paced(self, message: Message, pacer: Pacer) -> SendResult:
        requests = self.plan(message)
        latency = 0.0
        result = SendResult(OutcomeClass.DELIVERED)
        for index, request in enumerate(requests):
            wait = await pacer.acquire(request.rate_key, may_refuse=index == 0)
            if wait is not None:
                return SendResult(
                    OutcomeClass.RATE_LIMITED,
                    retry_after=wait,
                    error=f"rate limit of channel {self.name!r}: next slot in {wait:.1f}s",
                )
            result = await self.perform(request)
            latency += result.latency
            if result.retry_after is not None and not result.ok:
                pacer.penalize(request.rate_key, result.retry_after)
            if not result.ok:
                if index:
                    note = f" (request {index + 1} of {len(requests)}; earlier ones were sent)"
                    result = replace(result, error=(result.error or "") + note)
                return replace(result, latency=latency)
        return replace(result, latency=latency)

    async def perform(self, request: PlannedRequest) -> SendResult:
        """Make one request and classify it; transport errors become RETRYABLE."""
        answer = await self.call(request)
        if isinstance(answer, SendResult):
            return answer
        response, latency = answer
        return self.masked(self.classify(request, response, latency))

    async def call(self, request: PlannedRequest) -> tuple[httpx.Response, float] | SendResult:
        """The response and latency, or a failed ``SendResult`` for a transport error."""
        try:
            response, latency = await timed(
                lambda: self._http.request(
                    request.method,
                    request.url,
                    headers=dict(request.headers),
                    json=request.json,
                    content=request.content.encode() if request.content is not None else None,
                    data=dict(request.form) if request.form is not None else None,
                    timeout=self._timeout,
                )
            )
        except httpx.TimeoutException as exc:
            return self._failure(
                OutcomeClass.RETRYABLE, f"timed out after {self._timeout:g}s ({type(exc).__name__})"
            )
        except httpx.TransportError as exc:
            forbidden = forbidden_cause(exc)
            if forbidden is not None:
                # Retrying will not help: the operator has to allow the target.
                return self._failure(OutcomeClass.PERMANENT, f"target refused: {forbidden}")
            return self._failure(OutcomeClass.RETRYABLE, f"connection failed: {_describe(exc)}")
        except RetryableDeliveryError as exc:
            return self._failure(OutcomeClass.RETRYABLE, str(exc))
        except PermanentDeliveryError as exc:
            return self._failure(OutcomeClass.PERMANENT, str(exc))
        except httpx.HTTPError as exc:
            return self._failure(OutcomeClass.PERMANENT, f"request failed: {_describe(exc)}")
        return response, latency

    def masked(self, result: SendResult) -> SendResult:
        return replace(
            result,
            error=self.mask(result.error) if result.error else None,
            response_excerpt=self.mask(result.response_excerpt)
            if result.response_excerpt
            else None,
        )

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float
    ) -> SendResult:
        return provider_result(response, latency)

    def _failure(self, outcome: OutcomeClass, error: str) -> SendResult:
        return SendResult(outcome, error=self.mask(error))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


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
