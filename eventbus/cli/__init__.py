"""The ``eventbus`` command line.

Commands live in their own modules and are imported only when used, so
``eventbus publish`` never imports the consumer daemon (and ``eventbus``
never imports ``consumers`` at import time).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from .common import EXIT_USAGE, Context

__all__ = ["cli", "main"]

# command name -> "module:attribute" under eventbus.cli
COMMANDS: dict[str, tuple[str, str]] = {
    "publish": ("publish", "Publish events (one from flags, or JSONL from a file)."),
    "config": ("config_cmd", "Check the configuration file."),
    "run": ("run", "Run a consumer worker (and its HTTP server)."),
    "serve": ("serve", "Serve only the HTTP side: SSE live feed, dashboard, health, metrics."),
    "deliveries": ("deliveries", "Query delivery records."),
    "dlq": ("dlq", "List and redrive dead letters."),
    "channels": ("channels", "List and test configured channels."),
    "urls": ("urls", "Parse and explain shoutrrr-style channel URLs."),
    "tail": ("tail", "Print the live mirror in the terminal."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._available())

    def _available(self) -> dict[str, tuple[str, str]]:
        found = {}
        for name, (module, help_text) in COMMANDS.items():
            if importlib.util.find_spec(f"eventbus.cli.{module}") is not None:
                found[name] = (module, help_text)
        return found

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self._available().get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"eventbus.cli.{entry[0]}")
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_m, help_text) in sorted(self._available().items())]
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
