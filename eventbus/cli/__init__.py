"""The ``eventbus`` command line: the root group, its context and exit codes.

The commands come from the packages that own them (``publishers``,
``consumers``) through the ``eventbus.commands`` entry points (``registry``);
the core never imports those packages.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .common import (
    EXIT_BROKER,
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_USAGE,
    Context,
    config_failure,
    fail,
    missing_extra,
    run_async,
)
from .registry import CommandSpec, command_spec, contributed_commands, load_command

__all__ = [
    "EXIT_BROKER",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "CommandSpec",
    "Context",
    "cli",
    "config_failure",
    "fail",
    "main",
    "missing_extra",
    "run_async",
]


class LazyGroup(click.Group):
    """Lists commands from their tables; imports one only to run it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(contributed_commands())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = command_spec(cmd_name)
        if spec is None:
            return None
        command = load_command(cmd_name, spec)
        _accept_config_option(command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, spec.help) for name, spec in sorted(contributed_commands().items())]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  eventbus config check --config config/eventbus.example.yaml
  eventbus run --config /etc/eventbus/eventbus.yaml
  eventbus publish --type capsule.create --outcome success --team team-1 \\
      --resource capsule:c1 --actor user:u1

Settings come from the YAML file and EVENTBUS_* environment variables
(nested with __, e.g. EVENTBUS_BROKER__REDIS_URL=redis://host:6379/0).""",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="EVENTBUS_CONFIG",
    help="YAML configuration file (default: $EVENTBUS_CONFIG).",
)
@click.version_option(package_name="eventbus", prog_name="eventbus")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """eventbus: publish operator events and deliver them to webhooks, chats and mail."""
    ctx.obj = Context(config_path=config_path)


def _set_config_path(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(Context).config_path = value


def _accept_config_option(command: click.Command) -> None:
    """``--config PATH`` after the command too: ``eventbus run --config F`` is what people type."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _accept_config_option(sub)
        return
    if any("--config" in getattr(param, "opts", ()) for param in command.params):
        return  # the command has its own (config check)
    command.params.append(
        click.Option(
            ["--config"],
            type=click.Path(dir_okay=False),
            expose_value=False,
            callback=_set_config_path,
            help="YAML configuration file (may also come before the command).",
        )
    )


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="eventbus")
    except KeyboardInterrupt:
        sys.exit(130)
    except click.exceptions.Exit:
        raise
    except click.UsageError as exc:  # pragma: no cover - click handles these itself
        exc.show()
        sys.exit(EXIT_USAGE)
