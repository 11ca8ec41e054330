"""What every command shares: loading settings, exit codes, error output."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import click

from ..config import ChannelValidator, load_settings
from ..errors import BrokerUnavailable, ConfigError, EventBusError
from ..settings import Settings

__all__ = [
    "EXIT_BROKER",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "Context",
    "fail",
    "run_async",
]

EXIT_FAILED = 1  # the command ran and something it did failed
EXIT_CONFIG = 2  # bad configuration or usage
EXIT_USAGE = 2
EXIT_BROKER = 3  # the broker could not be reached

T = TypeVar("T")


@dataclass
class Context:
    """Per-invocation state shared by the commands (``ctx.obj``)."""

    config_path: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None

    def settings(self, *, deep: bool = False) -> Settings:
        """Load settings once; a bad configuration exits 2 with every problem.

        ``deep`` also builds every channel and compiles every template (the
        checks live in ``consumers``, imported only then).
        """
        if self._settings is None:
            channels: ChannelValidator | None = None
            subscriptions: ChannelValidator | None = None
            if deep:
                from consumers.validation import channel_problems, subscription_problems

                channels, subscriptions = channel_problems, subscription_problems
            try:
                self._settings = load_settings(
                    self.config_path,
                    channel_validator=channels,
                    subscription_validator=subscriptions,
                    **self.overrides,
                )
            except ConfigError as exc:
                click.secho("configuration problems:", fg="red", err=True)
                for problem in exc.problems:
                    click.echo(f"  - {problem}", err=True)
                sys.exit(EXIT_CONFIG)
        return self._settings


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; eventbus errors become one clear line and an exit code."""
    try:
        return asyncio.run(factory())
    except BrokerUnavailable as exc:
        fail(f"{exc}\n  check broker.redis_url / EVENTBUS_BROKER__REDIS_URL", EXIT_BROKER)
    except EventBusError as exc:
        fail(str(exc))
