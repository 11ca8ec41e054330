"""structlog, configured once at start-up.

JSON lines when stderr is not a terminal (or ``logging.format: json``), a
readable console otherwise. Context such as the event id, delivery id and
channel is bound by the code that logs; secrets are never passed in.

JSON is rendered by orjson and, when the stream has a binary buffer, written
as bytes: the worker writes a line per delivery, and this halves its cost.
"""

from __future__ import annotations

import codecs
import io
import logging
import sys
from collections.abc import Callable
from typing import Any, BinaryIO, TextIO, cast

import orjson
import structlog

from .settings import LoggingSettings

__all__ = ["HotLogger", "configure_logging"]


def configure_logging(settings: LoggingSettings, stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    use_json = settings.format == "json" or (settings.format == "auto" and not out.isatty())
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    logger_factory: Callable[..., Any]
    if use_json:
        shared.append(structlog.processors.format_exc_info)
        renderer, logger_factory = _json_output(out)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
        logger_factory = structlog.PrintLoggerFactory(out)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,
    )
    # Libraries that use stdlib logging (uvicorn, aio-pika) at the same level.
    logging.basicConfig(level=level, stream=out, format="%(levelname)s %(name)s: %(message)s")


class HotLogger:
    """A logger for a line per delivery: assembled once per logging configuration.

    ``structlog.get_logger()`` assembles a new logger (factory, wrapper,
    context) on every call unless loggers are cached for good, which would
    pin them to the first configuration and break ``capture_logs()``. This
    keeps the assembled logger and assembles it again only when structlog is
    reconfigured.
    """

    __slots__ = ("_bound", "_config", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._config: tuple[Any, ...] = ()
        self._bound: Any = None

    def get(self) -> Any:
        """The bound logger for the current configuration."""
        c = structlog.get_config()
        config = (c["processors"], c["logger_factory"], c["wrapper_class"], c["context_class"])
        cached = self._config
        if len(cached) != 4 or any(a is not b for a, b in zip(config, cached, strict=True)):
            self._bound = structlog.get_logger(self._name).bind()
            self._config = config
        return self._bound


def _json_output(out: TextIO) -> tuple[structlog.typing.Processor, Callable[..., Any]]:
    encoding = getattr(out, "encoding", None)
    if encoding is not None and codecs.lookup(encoding).name != "utf-8":
        # orjson writes UTF-8; stdlib json escapes to ASCII, which any stream takes.
        return structlog.processors.JSONRenderer(), structlog.PrintLoggerFactory(out)
    binary = getattr(out, "buffer", None)
    if isinstance(binary, io.BufferedIOBase | io.RawIOBase):
        # Bytes go under the text layer: whatever it still holds goes first.
        # (stdlib logging on the same stream flushes after every record.)
        out.flush()
        return (
            structlog.processors.JSONRenderer(_orjson_dumps),
            structlog.BytesLoggerFactory(cast(BinaryIO, binary)),
        )
    return structlog.processors.JSONRenderer(_orjson_dumps_str), structlog.PrintLoggerFactory(out)


_OPTIONS = orjson.OPT_NON_STR_KEYS


def _orjson_dumps(event_dict: dict[Any, Any], *, default: Callable[[Any], Any]) -> bytes:
    # ``default`` is structlog's: ``__structlog__()`` if there is one, else repr().
    try:
        return orjson.dumps(event_dict, default=default, option=_OPTIONS)
    except TypeError:
        # orjson.JSONEncodeError: an int past 64 bits, a dict key that is not
        # a str, number or None, a cycle, a __repr__ that raises. Keep the
        # line: render each field on its own, a repr() for those that fail.
        return orjson.dumps(
            {
                _repr(k) if not isinstance(k, str) else k: _salvage(v, default)
                for k, v in event_dict.items()
            }
        )


def _orjson_dumps_str(event_dict: dict[Any, Any], *, default: Callable[[Any], Any]) -> str:
    return _orjson_dumps(event_dict, default=default).decode()


def _salvage(value: Any, default: Callable[[Any], Any]) -> Any:
    try:
        return orjson.Fragment(orjson.dumps(value, default=default, option=_OPTIONS))
    except TypeError:
        return _repr(value)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__} whose repr() failed>"
