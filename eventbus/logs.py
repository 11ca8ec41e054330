"""structlog, configured once at start-up.

JSON lines when stderr is not a terminal (or ``logging.format: json``), a
readable console otherwise. Context such as the event id, delivery id and
channel is bound by the code that logs; secrets are never passed in.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from .settings import LoggingSettings

__all__ = ["configure_logging"]


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
    if use_json:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries that use stdlib logging (uvicorn, aio-pika) at the same level.
    logging.basicConfig(level=level, stream=out, format="%(levelname)s %(name)s: %(message)s")
