"""The one outcome table: every httpx exception class and every status code is decided."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.base import OutcomeClass
from consumers.channels.outcomes import (
    ERROR_RULES,
    classify_status,
    error_result,
    result_from_response,
    rule_for,
)
from consumers.netguard import ForbiddenTarget
from eventbus.errors import PermanentDeliveryError, RetryableDeliveryError

RETRYABLE = OutcomeClass.RETRYABLE
PERMANENT = OutcomeClass.PERMANENT

# What each exception means, written out independently of the table under test.
EXPECTED: dict[type[BaseException], OutcomeClass] = {
    httpx.HTTPError: PERMANENT,
    httpx.RequestError: PERMANENT,
    httpx.TransportError: RETRYABLE,
    httpx.TimeoutException: RETRYABLE,
    httpx.ConnectTimeout: RETRYABLE,
    httpx.ReadTimeout: RETRYABLE,
    httpx.WriteTimeout: RETRYABLE,
    httpx.PoolTimeout: RETRYABLE,
    httpx.NetworkError: RETRYABLE,
    httpx.ConnectError: RETRYABLE,
    httpx.ReadError: RETRYABLE,
    httpx.WriteError: RETRYABLE,
    httpx.CloseError: RETRYABLE,
    httpx.ProtocolError: RETRYABLE,
    httpx.LocalProtocolError: RETRYABLE,
    httpx.RemoteProtocolError: RETRYABLE,
    httpx.ProxyError: RETRYABLE,
    httpx.UnsupportedProtocol: PERMANENT,
    httpx.DecodingError: PERMANENT,
    httpx.TooManyRedirects: PERMANENT,
    httpx.HTTPStatusError: PERMANENT,
    httpx.InvalidURL: PERMANENT,
    httpx.CookieConflict: PERMANENT,
    httpx.StreamError: PERMANENT,
    httpx.StreamConsumed: PERMANENT,
    httpx.StreamClosed: PERMANENT,
    httpx.ResponseNotRead: PERMANENT,
    httpx.RequestNotRead: PERMANENT,
    ForbiddenTarget: PERMANENT,
    TimeoutError: RETRYABLE,
    OSError: RETRYABLE,
    RetryableDeliveryError: RETRYABLE,
    PermanentDeliveryError: PERMANENT,
    # A transport refusing the request as built: the same on every retry.
    ValueError: PERMANENT,
    TypeError: PERMANENT,
}


def httpx_exception_classes() -> set[type[BaseException]]:
    """Every exception class httpx defines, found by walking its exception tree."""
    found: set[type[BaseException]] = set()
    pending = [
        value
        for value in vars(httpx).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    while pending:
        kind = pending.pop()
        if kind in found or not kind.__module__.startswith("httpx"):
            continue
        found.add(kind)
        pending.extend(kind.__subclasses__())
    return found


def test_every_httpx_exception_class_has_its_own_rule() -> None:
    classes = httpx_exception_classes()
    assert len(classes) > 20  # the walk found the tree
    missing = sorted(kind.__name__ for kind in classes if kind not in ERROR_RULES)
    assert not missing, f"add these httpx exceptions to outcomes.ERROR_RULES: {missing}"


def test_the_table_is_what_the_design_says() -> None:
    assert {kind: rule.outcome for kind, rule in ERROR_RULES.items()} == EXPECTED


def make(kind: type[BaseException]) -> BaseException:
    if kind is httpx.HTTPStatusError:
        request = httpx.Request("GET", "https://example.com/")
        return kind("boom", request=request, response=httpx.Response(500, request=request))
    if kind is ForbiddenTarget:
        return kind("boom", host="internal", address="10.0.0.5", reason="private")
    if issubclass(kind, httpx.StreamError) and kind is not httpx.StreamError:
        return kind()  # these carry their own fixed message
    return kind("boom")


@pytest.mark.parametrize(
    "kind", sorted(EXPECTED, key=lambda kind: kind.__name__), ids=lambda kind: kind.__name__
)
def test_each_exception_becomes_its_result(kind: type[BaseException]) -> None:
    exc = make(kind)
    result = error_result(exc, target="https://example.com/x", timeout=3.0)
    assert result.outcome is EXPECTED[kind]
    assert result.status is None
    assert result.error is not None and (str(exc) or kind.__name__)[:40] in result.error


def test_subclasses_outside_the_table_use_their_nearest_ancestor() -> None:
    class Custom(httpx.ConnectError):
        pass

    rule = rule_for(Custom)
    assert rule is not None and rule.outcome is RETRYABLE
    assert rule_for(KeyError) is None


def test_timeouts_name_the_timeout() -> None:
    result = error_result(httpx.ReadTimeout("slow"), target="t", timeout=2.5)
    assert result.error is not None and "ReadTimeout (timeout 2.5s)" in result.error


def test_guard_refusal_is_permanent_even_inside_a_connect_error() -> None:
    error = httpx.ConnectError("cannot connect")
    error.__cause__ = ForbiddenTarget(
        "refusing 'internal': it resolves to 10.0.0.5 (private)",
        host="internal",
        address="10.0.0.5",
        reason="private",
    )
    result = error_result(error, target="t", timeout=1.0)
    assert result.outcome is PERMANENT
    assert result.error is not None and "resolves to 10.0.0.5" in result.error


def test_transport_value_and_type_errors_are_permanent_and_say_what_failed() -> None:
    # aiohttp's words when a URL carries credentials and an Authorization header is set
    text = "Cannot combine AUTHORIZATION header with AUTH argument or credentials encoded in URL"
    result = error_result(ValueError(text), target="https://h.example/in", timeout=1.0)
    assert result.outcome is PERMANENT
    assert result.error == (
        f"request to https://h.example/in failed, the request could not be made: ValueError: {text}"
    )
    typed = error_result(TypeError("header value must be str"), target="t", timeout=1.0)
    assert typed.outcome is PERMANENT and "TypeError: header value must be str" in typed.error


def test_an_unclassified_exception_is_still_a_result() -> None:
    # A channel never raises: a raising channel's delivery is retried forever.
    result = error_result(RuntimeError("bug"), target="t", timeout=1.0)
    assert result.outcome is PERMANENT
    assert result.error is not None and "unexpected error" in result.error
    assert "RuntimeError: bug" in result.error


def expected_status(status: int) -> OutcomeClass:
    if 200 <= status <= 299:
        return OutcomeClass.DELIVERED
    if status in (408, 425, 429) or 500 <= status <= 599:
        return RETRYABLE
    return PERMANENT


@pytest.mark.parametrize("status", range(100, 600))
def test_every_status_code(status: int) -> None:
    assert classify_status(status) is expected_status(status)


def test_gone_disables_and_redirect_names_the_location() -> None:
    gone = result_from_response(httpx.Response(410), 0.1)
    assert gone.outcome is PERMANENT and gone.disable_channel
    moved = result_from_response(httpx.Response(308, headers={"location": "https://new/"}), 0.1)
    assert moved.outcome is PERMANENT and not moved.disable_channel
    assert moved.error is not None and "https://new/" in moved.error
    throttled = result_from_response(httpx.Response(429, headers={"retry-after": "7"}), 0.1)
    assert throttled.outcome is RETRYABLE and throttled.retry_after == 7.0
