"""What a status code or a failed request means: the one table every channel uses.

DESIGN.md's delivery semantics, written down once: 2xx delivered; 408, 425,
429 and 5xx retryable; 410 Gone permanent and disabling the channel; a 3xx
permanent (redirects are never followed, the error names the location);
other statuses permanent. For exceptions, ``ERROR_RULES`` names every httpx
exception class (a test walks httpx's exception tree, so a new httpx class
cannot slip through unclassified) plus the few non-httpx errors a transport
raises. Anything else a send raises is still a result (``UNEXPECTED``,
permanent): a channel never raises, since a raising channel leaves its
delivery to be retried on every receive with nothing but the exception's
name to explain it. A refusal by the private-target guard is checked before the table:
it arrives wrapped in an ordinary connection error, but retrying cannot help
until the operator allows the target.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

from consumers.netguard import ForbiddenTarget, forbidden_cause
from eventbus.errors import PermanentDeliveryError, RetryableDeliveryError

from .base import EXCERPT_BYTES, OutcomeClass, SendResult

__all__ = [
    "CAUGHT_ERRORS",
    "ERROR_RULES",
    "UNEXPECTED",
    "ErrorRule",
    "classify_status",
    "error_result",
    "excerpt",
    "parse_retry_after",
    "result_from_response",
    "rule_for",
]

RETRYABLE: Final = OutcomeClass.RETRYABLE
PERMANENT: Final = OutcomeClass.PERMANENT

_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})


def classify_status(status: int) -> OutcomeClass:
    """2xx delivered; 408/425/429/5xx retryable; everything else permanent."""
    if 200 <= status < 300:
        return OutcomeClass.DELIVERED
    if status in _RETRYABLE_STATUS or 500 <= status < 600:
        return RETRYABLE
    return PERMANENT


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """How one exception class is classified and named to the operator."""

    outcome: OutcomeClass
    what: str
    # The exception's own text is the message (our own delivery errors).
    verbatim: bool = False


ERROR_RULES: Final[Mapping[type[BaseException], ErrorRule]] = {
    # httpx's tree, leaves and inner nodes alike.
    httpx.HTTPError: ErrorRule(PERMANENT, "request failed"),
    httpx.RequestError: ErrorRule(PERMANENT, "request failed"),
    httpx.TransportError: ErrorRule(RETRYABLE, "connection failed"),
    httpx.TimeoutException: ErrorRule(RETRYABLE, "timed out"),
    httpx.ConnectTimeout: ErrorRule(RETRYABLE, "timed out"),
    httpx.ReadTimeout: ErrorRule(RETRYABLE, "timed out"),
    httpx.WriteTimeout: ErrorRule(RETRYABLE, "timed out"),
    httpx.PoolTimeout: ErrorRule(RETRYABLE, "timed out"),
    httpx.NetworkError: ErrorRule(RETRYABLE, "connection failed"),
    httpx.ConnectError: ErrorRule(RETRYABLE, "connection failed"),
    httpx.ReadError: ErrorRule(RETRYABLE, "connection failed"),
    httpx.WriteError: ErrorRule(RETRYABLE, "connection failed"),
    httpx.CloseError: ErrorRule(RETRYABLE, "connection failed"),
    httpx.ProtocolError: ErrorRule(RETRYABLE, "protocol error"),
    httpx.LocalProtocolError: ErrorRule(RETRYABLE, "protocol error"),
    httpx.RemoteProtocolError: ErrorRule(RETRYABLE, "protocol error"),
    httpx.ProxyError: ErrorRule(RETRYABLE, "proxy failed"),
    # The URL's scheme cannot be sent at all: a configuration problem.
    httpx.UnsupportedProtocol: ErrorRule(PERMANENT, "unsupported protocol"),
    httpx.DecodingError: ErrorRule(PERMANENT, "response could not be decoded"),
    httpx.TooManyRedirects: ErrorRule(PERMANENT, "too many redirects"),
    httpx.HTTPStatusError: ErrorRule(PERMANENT, "request failed"),
    httpx.InvalidURL: ErrorRule(PERMANENT, "invalid URL"),
    httpx.CookieConflict: ErrorRule(PERMANENT, "request failed"),
    httpx.StreamError: ErrorRule(PERMANENT, "request failed"),
    httpx.StreamConsumed: ErrorRule(PERMANENT, "request failed"),
    httpx.StreamClosed: ErrorRule(PERMANENT, "request failed"),
    httpx.ResponseNotRead: ErrorRule(PERMANENT, "request failed"),
    httpx.RequestNotRead: ErrorRule(PERMANENT, "request failed"),
    # The private-target guard. Usually it arrives wrapped in a ConnectError,
    # which is why error_result() looks for it in the cause chain first.
    ForbiddenTarget: ErrorRule(PERMANENT, "target refused", verbatim=True),
    # Below httpx: asyncio timeouts and socket errors a transport lets through.
    TimeoutError: ErrorRule(RETRYABLE, "timed out"),
    OSError: ErrorRule(RETRYABLE, "connection failed"),
    RetryableDeliveryError: ErrorRule(RETRYABLE, "", verbatim=True),
    PermanentDeliveryError: ErrorRule(PERMANENT, "", verbatim=True),
    # A transport refusing the request as built (aiohttp raises ValueError for
    # a URL with credentials next to an Authorization header, TypeError for a
    # header value of the wrong type): the same request fails the same way on
    # every retry, so it is permanent.
    ValueError: ErrorRule(PERMANENT, "the request could not be made"),
    TypeError: ErrorRule(PERMANENT, "the request could not be made"),
}

# What any other exception from a send becomes.
UNEXPECTED: Final = ErrorRule(PERMANENT, "unexpected error (please report it)")

# Everything but cancellation and interpreter exits (BaseException).
CAUGHT_ERRORS: Final = (Exception,)


def rule_for(error: type[BaseException]) -> ErrorRule | None:
    """The rule of ``error``'s nearest classified ancestor (itself first)."""
    for kind in error.__mro__:
        rule = ERROR_RULES.get(kind)
        if rule is not None:
            return rule
    return None


def error_result(exc: BaseException, *, target: str, timeout: float) -> SendResult:
    """The ``SendResult`` of a request that raised ``exc`` (not yet masked)."""
    forbidden = forbidden_cause(exc)
    if forbidden is not None:
        exc = forbidden
    rule = rule_for(type(exc)) or UNEXPECTED
    if rule.verbatim:
        text = f"{rule.what}: {exc}" if rule.what else str(exc)
        return SendResult(rule.outcome, error=text)
    kind = type(exc).__name__
    if rule.what == "timed out":
        kind = f"{kind} (timeout {timeout:g}s)"
    detail = str(exc)[:300]
    described = f"{kind}: {detail}" if detail and detail != type(exc).__name__ else kind
    return SendResult(rule.outcome, error=f"request to {target} failed, {rule.what}: {described}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def excerpt(data: bytes | str, limit: int = EXCERPT_BYTES) -> str:
    """The first ``limit`` bytes of a response body, as text."""
    raw = data.encode() if isinstance(data, str) else data
    return raw[:limit].decode("utf-8", "replace")


def result_from_response(
    response: httpx.Response, latency: float, *, body: bytes | None = None
) -> SendResult:
    """Classify a plain HTTP response (webhook-like services).

    ``body`` is what was read of a streamed response; by default the
    response's content (it must have been read).
    """
    status = response.status_code
    content = response.content if body is None else body
    outcome = classify_status(status)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if 300 <= status < 400:
        error: str | None = (
            f"HTTP {status} redirect to {response.headers.get('location', '?')!s:.200}; "
            "redirects are not followed: configure the final URL"
        )
    elif outcome is OutcomeClass.DELIVERED:
        error = None
    else:
        error = f"HTTP {status} {response.reason_phrase}".strip()
    return SendResult(
        outcome=outcome,
        status=status,
        latency=latency,
        error=error,
        response_excerpt=excerpt(content) if content else None,
        retry_after=retry_after if outcome is RETRYABLE else None,
        disable_channel=status == 410,
    )
