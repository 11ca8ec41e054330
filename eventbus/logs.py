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
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, BinaryIO, TextIO, cast

import orjson
import structlog

from .settings import LoggingSettings

__all__ = ["HotLogger", "configure_logging", "set_log_redactor"]

# Libraries whose INFO lines carry full request URLs (chat services put
# tokens in URLs): quiet unless debugging, and redacted even then.
_CHATTY = ("httpx", "httpcore", "hpack", "aiohttp.access", "aiohttp.client")
# stdlib logger names shown under a name that does not mislead:
# uvicorn logs its ordinary start-up lines to "uvicorn.error".
_LOGGER_NAMES = {"uvicorn.error": "uvicorn"}

Masker = Callable[[str], str]


class _Redaction:
    """The processor that masks every configured secret in every field of every line.

    The masker is swapped in once the channels (which know their secrets)
    are built, and again on reload; until then lines pass unchanged.
    """

    __slots__ = ("mask",)

    def __init__(self) -> None:
        self.mask: Masker | None = None

    def __call__(self, logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> Any:
        mask = self.mask
        if mask is None:
            return event_dict
        for key, value in event_dict.items():
            if isinstance(value, str):
                event_dict[key] = mask(value)
            elif isinstance(value, Mapping | list | tuple | set | frozenset):
                event_dict[key] = _masked(value, mask)
        return event_dict


def _masked(value: Any, mask: Masker, seen: frozenset[int] = frozenset()) -> Any:
    """``value`` with secrets masked in its strings; the same object when nothing changed.

    Container types are kept, and a container met again inside itself (a
    cycle) is left as it is, for the renderer to show as it always does.
    """
    if isinstance(value, str):
        return mask(value)
    if id(value) in seen:
        return value
    inner = seen | {id(value)}
    if isinstance(value, Mapping):
        items = {key: _masked(item, mask, inner) for key, item in value.items()}
        changed = any(items[key] is not item for key, item in value.items())
        return items if changed else value
    if isinstance(value, list | tuple | set | frozenset):
        masked = [_masked(item, mask, inner) for item in value]
        changed = any(new is not old for new, old in zip(masked, value, strict=True))
        return type(value)(masked) if changed else value
    return value


_redaction = _Redaction()


def set_log_redactor(mask: Masker | None) -> None:
    """Mask secrets with ``mask`` in every log line from now on (``None``: stop)."""
    _redaction.mask = mask


def _logger_name(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> Any:
    record = event_dict.get("_record")
    if record is not None:
        event_dict["logger"] = _LOGGER_NAMES.get(record.name, record.name)
    return event_dict


def configure_logging(settings: LoggingSettings, stream: TextIO | None = None) -> None:
    """One pipeline for every line: the product's structlog calls and stdlib loggers alike.

    Lines from libraries (httpx, aiohttp, uvicorn, asyncio) go through
    structlog's ``ProcessorFormatter``, so they come out in the same format
    with the same keys (plus ``logger``), and through the same redaction.
    """
    out = stream or sys.stderr
    _redaction.mask = None  # until the caller says what to mask (set_log_redactor)
    use_json = settings.format == "json" or (settings.format == "auto" and not out.isatty())
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks become text first, so the redaction sees them too.
    tail: list[structlog.typing.Processor] = [structlog.processors.format_exc_info, _redaction]
    renderer: structlog.typing.Processor
    text_renderer: structlog.typing.Processor
    logger_factory: Callable[..., Any]
    if use_json:
        renderer, logger_factory = _json_output(out)
        text_renderer = structlog.processors.JSONRenderer(_orjson_dumps_str)
    else:
        renderer = text_renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
        logger_factory = structlog.PrintLoggerFactory(out)
    structlog.configure(
        processors=[*shared, *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,
    )
    _route_stdlib(out, level, [*shared, _logger_name], [*tail, text_renderer])


def _route_stdlib(
    out: TextIO,
    level: int,
    pre_chain: list[structlog.typing.Processor],
    processors: list[structlog.typing.Processor],
) -> None:
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=pre_chain,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *processors],
        )
    )
    root = logging.getLogger()
    for old in root.handlers[:]:
        if getattr(old, "_eventbus", False):
            root.removeHandler(old)
    handler._eventbus = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(
            logging.DEBUG if level <= logging.DEBUG else logging.WARNING
        )


class HotLogger:
    """A logger for a line per delivery: assembled once per logging configuration.

    ``structlog.get_logger()`` assembles a new logger (factory, wrapper,
    context) on every call unless loggers are cached for good, which would
    pin them to the first configuration and break ``capture_logs()``. This
    keeps the assembled logger and assembles it again only when structlog is
    reconfigured.
    """

    __slots__ = ("_bound", "_config", "_enabled", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._config: tuple[Any, ...] = ()
        self._bound: Any = None
        self._enabled: dict[int, bool] = {}

    def get(self) -> Any:
        """The bound logger for the current configuration."""
        current = structlog.get_config()
        cached = self._config
        if (
            not cached
            or current["processors"] is not cached[0]
            or current["logger_factory"] is not cached[1]
            or current["wrapper_class"] is not cached[2]
            or current["context_class"] is not cached[3]
        ):
            self._bound = structlog.get_logger(self._name).bind()
            self._enabled = {}
            self._config = (
                current["processors"],
                current["logger_factory"],
                current["wrapper_class"],
                current["context_class"],
            )
        return self._bound

    def enabled(self, level: int) -> bool:
        """Whether a line at ``level`` (``logging.DEBUG`` ...) would be written.

        Checked before building a line's fields, so that a line filtered out
        costs a lookup, not a dict and a call. The answer is kept until
        structlog is configured again. A wrapper class without the check
        (not the configured one) counts as enabled.
        """
        bound = self.get()
        known = self._enabled.get(level)
        if known is None:
            check = getattr(bound, "is_enabled_for", None)
            known = self._enabled[level] = True if check is None else bool(check(level))
        return known


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
