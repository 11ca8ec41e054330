"""Human durations: parsing, formatting, and use in settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from eventbus.durations import Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param(5, 5.0, id="int"),
        pytest.param(2.5, 2.5, id="float"),
        pytest.param(0, 0.0, id="zero"),
        pytest.param("30", 30.0, id="numeric-string"),
        pytest.param("1.5", 1.5, id="decimal-string"),
        pytest.param("500ms", 0.5, id="ms"),
        pytest.param("5s", 5.0, id="s"),
        pytest.param("5m", 300.0, id="m"),
        pytest.param("2h", 7200.0, id="h"),
        pytest.param("7d", 604800.0, id="d"),
        pytest.param("1w", 604800.0, id="w"),
        pytest.param("1h30m", 5400.0, id="compound"),
        pytest.param("1m 30s", 90.0, id="compound-space"),
        pytest.param(" 10S ", 10.0, id="case-and-blanks"),
        pytest.param("1.5h", 5400.0, id="fractional-unit"),
    ],
)
def test_parse(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("5x", id="unknown-unit"),
        pytest.param("m5", id="unit-first"),
        pytest.param("5 minutes", id="word"),
        pytest.param("5s garbage", id="trailing"),
        pytest.param("-5s", id="negative-unit"),
        pytest.param(-1, id="negative-number"),
        pytest.param("-3", id="negative-string"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="none"),
        pytest.param([5], id="list"),
    ],
)
def test_invalid(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    message = str(info.value)
    assert "duration" in message
    assert repr(value) in message or "negative" in message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0.25, "250ms", id="ms"),
        pytest.param(0, "0ms", id="zero"),
        pytest.param(1, "1s", id="s"),
        pytest.param(90, "1m30s", id="m-s"),
        pytest.param(3600, "1h", id="h"),
        pytest.param(86400 + 3661, "1d1h1m1s", id="all"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@given(st.integers(min_value=1, max_value=10**8))
def test_format_then_parse_round_trips_whole_seconds(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


class _Model(BaseModel):
    timeout: Duration


def test_duration_in_a_model() -> None:
    assert _Model(timeout="2m").timeout == 120.0
    with pytest.raises(ValidationError, match="is not a duration"):
        _Model(timeout="soon")
