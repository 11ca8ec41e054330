"""The line per delivery (issue 19): debug for a success unless ``logging.deliveries: all``.

A failure or a give-up is a warning, other outcomes (retrying, skipped) an
info line, whatever ``deliveries`` says; a line filtered out by the level
is not built at all.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from consumers.channels.base import OutcomeClass, SendResult
from consumers.dispatch import Dispatcher
from eventbus.brokers.redis_streams import StreamEntry
from eventbus.logs import HotLogger, configure_logging
from eventbus.settings import LoggingSettings, Settings

from .fakes import FakeChannel, channel_spec, event, subscription

FAILED = SendResult(OutcomeClass.PERMANENT, status=400, error="HTTP 400")
RETRY = SendResult(OutcomeClass.RETRYABLE, status=503, error="HTTP 503")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


async def _lines(
    level: str, *answers: SendResult, deliveries: str | None = None
) -> list[dict[str, Any]]:
    """Deliver one event per answer through a dispatcher; the JSON lines logged."""
    stream = io.StringIO()
    section: dict[str, Any] = {"level": level, "format": "json"}
    if deliveries is not None:
        section["deliveries"] = deliveries
    settings = Settings(
        broker={"redis_url": "redis://127.0.0.1:6379/0", "prefix": "unused"},
        logging=section,
        channels=[channel_spec("fake")],
        subscriptions=[subscription(retry=["1m"])],
    )
    configure_logging(settings.logging, stream=stream)
    dispatcher = Dispatcher(settings, {"fake": FakeChannel("fake", *answers)})
    for number, _ in enumerate(answers):
        ev = event(resource={"type": "capsule", "id": f"c{number}"})
        entry = StreamEntry(f"{number + 1}-0", {b"payload": ev.to_json().encode()})
        work = dispatcher.entry_work(entry)
        await dispatcher.send(work)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _deliveries(lines: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(line["event"], line["level"]) for line in lines if "delivery_id" in line]


@pytest.mark.usefixtures("restore_logging")
async def test_a_success_is_not_logged_at_info_by_default() -> None:
    lines = await _lines("info", SendResult(OutcomeClass.DELIVERED, status=200), FAILED, RETRY)
    assert _deliveries(lines) == [
        ("delivery.failed", "warning"),
        ("delivery.retrying", "info"),
    ]
    failed = next(line for line in lines if line["event"] == "delivery.failed")
    assert failed["error"] == "HTTP 400" and failed["status"] == 400


@pytest.mark.usefixtures("restore_logging")
async def test_a_success_is_a_debug_line_at_debug() -> None:
    lines = await _lines("debug", SendResult(OutcomeClass.DELIVERED, status=200))
    [line] = [line for line in lines if line.get("event") == "delivery.sent"]
    assert line["level"] == "debug"
    assert (line["channel"], line["subscription"], line["status"]) == ("fake", "all", 200)
    assert line["outcome"] == "delivered" and "latency_ms" in line


@pytest.mark.usefixtures("restore_logging")
async def test_deliveries_all_brings_back_an_info_line_per_success() -> None:
    lines = await _lines(
        "info", SendResult(OutcomeClass.DELIVERED, status=204), FAILED, deliveries="all"
    )
    assert _deliveries(lines) == [("delivery.sent", "info"), ("delivery.failed", "warning")]


@pytest.mark.usefixtures("restore_logging")
async def test_only_warnings_at_warning() -> None:
    lines = await _lines(
        "warning", SendResult(OutcomeClass.DELIVERED), RETRY, FAILED, deliveries="all"
    )
    assert _deliveries(lines) == [("delivery.failed", "warning")]


@pytest.mark.usefixtures("restore_logging")
def test_hot_logger_knows_what_the_level_filters() -> None:
    configure_logging(LoggingSettings(level="info", format="json"), stream=io.StringIO())
    hot = HotLogger("eventbus.delivery")
    assert not hot.enabled(logging.DEBUG)
    assert hot.enabled(logging.INFO) and hot.enabled(logging.WARNING)
    configure_logging(LoggingSettings(level="debug", format="json"), stream=io.StringIO())
    assert hot.enabled(logging.DEBUG), "a new configuration is seen"


def test_an_unknown_deliveries_value_is_refused() -> None:
    with pytest.raises(ValueError, match="deliveries"):
        LoggingSettings(deliveries="some")  # type: ignore[arg-type]
