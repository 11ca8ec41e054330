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
    "config_failure",
    "fail",
    "missing_extra",
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

    def settings(
        self,
        *,
        channel_validator: ChannelValidator | None = None,
        subscription_validator: ChannelValidator | None = None,
    ) -> Settings:
        """Load settings once; a bad configuration exits 2 with every problem.

        The validators (channel options, templates) are passed by the commands
        that build channels; they live with those commands, not in the core.
        """
        if self._settings is None:
            try:
                self._settings = load_settings(
                    self.config_path,
                    channel_validator=channel_validator,
                    subscription_validator=subscription_validator,
                    **self.overrides,
                )
            except ConfigError as exc:
                config_failure(exc)
        return self._settings

    def reload_settings(self) -> Settings:
        """Load the settings again, e.g. after ``overrides`` changed."""
        self._settings = None
        return self.settings()


def config_failure(exc: ConfigError) -> NoReturn:
    """Every problem of ``exc``, one per line, and exit 2."""
    click.secho("configuration problems:", fg="red", err=True)
    for problem in exc.problems:
        click.echo(f"  - {problem}", err=True)
    sys.exit(EXIT_CONFIG)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def missing_extra(extra: str, exc: ModuleNotFoundError, what: str) -> NoReturn:
    """Exit 2 naming the extra that would have installed the missing module."""
    fail(
        f"{what} needs {exc.name or 'a module'}, which is not installed: "
        f"pip install 'eventbus[{extra}]'",
        EXIT_USAGE,
    )


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; eventbus errors become one clear line and an exit code."""
    try:
        return asyncio.run(factory())
    except BrokerUnavailable as exc:
        fail(
            f"{exc}\n  check broker.redis_url / EVENTBUS_BROKER__REDIS_URL (and, with "
            "broker.kind: rabbitmq, broker.amqp_url / EVENTBUS_BROKER__AMQP_URL)",
            EXIT_BROKER,
        )
    except ConfigError as exc:  # a setting that cannot work: exit 2 like a bad file
        fail(str(exc), EXIT_CONFIG)
    except EventBusError as exc:
        fail(str(exc))
