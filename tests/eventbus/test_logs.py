"""configure_logging: one JSON object per line, whatever the stream and the values."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import io
import json
import logging
import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import pytest
import structlog

from eventbus.logs import configure_logging
from eventbus.settings import LoggingSettings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


Sink = tuple[TextIO, Callable[[], str]]


@pytest.fixture(params=["text-file", "stringio"])
def sink(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Sink]:
    """A stream for configure_logging and a way to read what was written."""
    if request.param == "stringio":
        buffer = io.StringIO()
        yield buffer, buffer.getvalue
        return
    path = tmp_path / "log.jsonl"
    with open(path, "w") as file:  # text mode, with a binary .buffer under it

        def read() -> str:
            file.flush()
            return path.read_text(encoding="utf-8")

        yield file, read


def lines(read: Callable[[], str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read().splitlines()]


def test_json_lines(sink: Sink) -> None:
    stream, read = sink
    configure_logging(LoggingSettings(format="json", level="info"), stream=stream)
    log = structlog.get_logger()
    structlog.contextvars.bind_contextvars(delivery_id="d-1")
    log.info("delivery.sent", channel="ops", attempts=2, duration_ms=12.5, team="équipe ✓")
    log.debug("delivery.debug")  # below the level
    try:
        raise ValueError("bad payload")
    except ValueError:
        log.exception("delivery.crashed", channel="ops")

    sent, crashed = lines(read)
    assert sent == {
        "delivery_id": "d-1",
        "channel": "ops",
        "attempts": 2,
        "duration_ms": 12.5,
        "team": "équipe ✓",
        "event": "delivery.sent",
        "level": "info",
        "timestamp": sent["timestamp"],
    }
    assert datetime.datetime.fromisoformat(sent["timestamp"]).tzinfo is datetime.UTC
    assert crashed["event"] == "delivery.crashed"
    assert crashed["level"] == "error"
    assert "ValueError: bad payload" in crashed["exception"]


def test_auto_is_json_when_not_a_terminal(sink: Sink) -> None:
    stream, read = sink
    configure_logging(LoggingSettings(format="auto"), stream=stream)
    structlog.get_logger().info("worker.started", consumer="w1")
    assert lines(read)[0]["consumer"] == "w1"


def test_binary_streams_are_written_as_bytes(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.jsonl"
    with open(path, "w") as file:
        file.write("written before\n")  # still in the text layer's buffer
        configure_logging(LoggingSettings(format="json"), stream=file)
        assert isinstance(structlog.get_config()["logger_factory"], structlog.BytesLoggerFactory)
        structlog.get_logger().info("after")
    first, second = path.read_text(encoding="utf-8").splitlines()
    assert first == "written before"
    assert json.loads(second)["event"] == "after"


def test_streams_in_other_encodings_get_ascii_json(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.jsonl"
    with open(path, "w", encoding="latin-1") as file:
        configure_logging(LoggingSettings(format="json"), stream=file)
        structlog.get_logger().info("sent", team="équipe ✓")
    raw = path.read_bytes()
    assert raw.isascii()
    assert json.loads(raw)["team"] == "équipe ✓"


def test_console_mode_is_not_json() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="console"), stream=stream)
    structlog.get_logger().info("delivery.sent", channel="ops")
    output = stream.getvalue()
    assert "delivery.sent" in output
    assert "channel" in output
    assert not output.startswith("{")


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr failed")


class Structured:
    def __structlog__(self) -> dict[str, int]:
        return {"answer": 42}


def _cycle() -> dict[str, Any]:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    return cycle


ODD = [
    pytest.param(ValueError("boom"), "ValueError('boom')", id="exception"),
    pytest.param(pathlib.Path("/etc/eventbus"), "PosixPath('/etc/eventbus')", id="path"),
    pytest.param({3, 1}, "{1, 3}", id="set"),
    pytest.param(b"\xff", "b'\\xff'", id="bytes"),
    pytest.param(
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "2024-01-02T03:04:05+00:00",
        id="datetime",
    ),
    pytest.param(uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001", id="uuid"),
    pytest.param(Color.RED, 1, id="enum"),
    pytest.param(Point(1), {"x": 1}, id="dataclass"),
    pytest.param(Structured(), {"answer": 42}, id="__structlog__"),
    pytest.param({1: "a", None: "b", 2.5: "c"}, {"1": "a", "null": "b", "2.5": "c"}, id="keys"),
    pytest.param({("t", 1): "a"}, "{('t', 1): 'a'}", id="tuple-key"),
    pytest.param(2**70, str(2**70), id="int-past-64-bits"),
    pytest.param(float("nan"), None, id="nan"),
    pytest.param(_cycle(), "{'self': {...}}", id="cycle"),
    pytest.param(BadRepr(), "<BadRepr whose repr() failed>", id="repr-raises"),
]


@pytest.mark.parametrize(("value", "rendered"), ODD)
def test_odd_values_render_and_never_raise(sink: Sink, value: Any, rendered: Any) -> None:
    stream, read = sink
    configure_logging(LoggingSettings(format="json"), stream=stream)
    structlog.get_logger().info("odd", value=value, channel="ops")
    [line] = lines(read)
    assert line["value"] == rendered
    assert line["channel"] == "ops"
    assert line["event"] == "odd"


def test_hot_logger_is_assembled_once_per_configuration() -> None:
    from eventbus.logs import HotLogger

    first_out = io.StringIO()
    configure_logging(LoggingSettings(level="info", format="json"), stream=first_out)
    hot = HotLogger("eventbus.test")
    first = hot.get()
    assert hot.get() is first, "kept while the configuration stands"
    with structlog.testing.capture_logs() as logs:
        hot.get().info("delivery.sent", channel="captured")
    assert logs == [{"event": "delivery.sent", "channel": "captured", "log_level": "info"}]
    hot.get().info("delivery.sent", channel="after")
    assert [json.loads(line)["channel"] for line in first_out.getvalue().splitlines()] == [
        "after"
    ], "back on the stream once capture_logs() is done"

    out = io.StringIO()
    configure_logging(LoggingSettings(level="warning", format="json"), stream=out)
    assert hot.get() is not first, "assembled again for a new configuration"
    hot.get().info("delivery.sent", channel="filtered")
    hot.get().warning("delivery.failed", channel="ops")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == [
        "delivery.failed"
    ], "the new stream and level are followed"


# -- one pipeline for every logger (issue 12, items 1 and 2) ---------------------------


def test_library_lines_are_json_with_the_same_keys(sink: Sink) -> None:
    stream, read = sink
    configure_logging(LoggingSettings(format="json", level="info"), stream=stream)
    structlog.get_logger("eventbus.test").info("ours", channel="ops")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("asyncio").warning("slow callback")
    ours, started, slow = lines(read)
    assert {"event", "level", "timestamp"} <= ours.keys()
    assert {"event", "level", "timestamp"} <= started.keys() <= {*ours.keys(), "logger"}
    assert started["event"] == "Started server process [42]"
    # uvicorn's ordinary lines come from "uvicorn.error": shown as what they are
    assert started["logger"] == "uvicorn" and started["level"] == "info"
    assert slow["logger"] == "asyncio" and slow["level"] == "warning"


def test_request_logging_of_http_libraries_is_off_by_default(sink: Sink) -> None:
    stream, read = sink
    configure_logging(LoggingSettings(format="json", level="info"), stream=stream)
    logging.getLogger("httpx").info("HTTP Request: POST http://h/bot1:SECRET/sendMessage")
    assert read() == ""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secrets_are_masked_in_every_field_of_every_logger(sink: Sink, fmt: str) -> None:
    from eventbus.logs import set_log_redactor

    stream, read = sink
    configure_logging(LoggingSettings(format=fmt, level="debug"), stream=stream)  # type: ignore[arg-type]
    set_log_redactor(lambda text: text.replace("SECRET", "***"))
    try:
        logging.getLogger("httpx").info("HTTP Request: POST http://h/bot1:SECRET/sendMessage")
        structlog.get_logger().warning("ours", url="http://h/SECRET", nested={"a": ["SECRET"]})
        try:
            raise ValueError("token SECRET refused")
        except ValueError:
            logging.getLogger("aiohttp.client").exception("failed")
            structlog.get_logger().exception("crashed")
    finally:
        set_log_redactor(None)
    text = read()
    assert "SECRET" not in text
    assert text.count("***") >= 5
    assert "bot1:***" in text and "ValueError" in text


@pytest.mark.parametrize(("value", "rendered"), ODD)
def test_odd_values_render_with_a_redactor_too(sink: Sink, value: Any, rendered: Any) -> None:
    from eventbus.logs import set_log_redactor

    stream, read = sink
    configure_logging(LoggingSettings(format="json"), stream=stream)
    set_log_redactor(lambda text: text.replace("SECRET", "***"))
    try:
        structlog.get_logger().info("odd", value=value, note="a SECRET")
    finally:
        set_log_redactor(None)
    [line] = lines(read)
    assert line["value"] == rendered and line["note"] == "a ***"
