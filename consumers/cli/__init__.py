"""The commands ``consumers`` adds to ``eventbus`` (entry point ``eventbus.commands``).

Only this table is imported for ``eventbus --help``; each command's module
(and the daemon behind it) loads when that command runs.
"""

from __future__ import annotations

from typing import Final

from eventbus.cli import CommandSpec

__all__ = ["COMMANDS"]


def _needs_worker(module: str, help_text: str) -> CommandSpec:
    return CommandSpec(f"{__name__}.{module}", help_text, extra="worker")


COMMANDS: Final = {
    "config": _needs_worker("config_cmd", "Check the configuration file."),
    "run": _needs_worker("run", "Run a consumer worker (and its HTTP server)."),
    "serve": _needs_worker(
        "serve", "Serve only the HTTP side: SSE live feed, dashboard, health, metrics."
    ),
    "deliveries": _needs_worker("deliveries", "Query delivery records."),
    "replay": _needs_worker("replay", "Dispatch a range of the stream again, as new deliveries."),
    "dlq": _needs_worker("dlq", "List and redrive dead letters."),
    "channels": _needs_worker("channels", "List and test configured channels."),
    "send": _needs_worker("send", "Send one notification to channel URLs, without a config file."),
    "urls": _needs_worker("urls", "Parse and explain shoutrrr-style channel URLs."),
    "silence": _needs_worker("silence", "Mute a team's matching events for a while."),
    "alerts": _needs_worker("alerts", "List, show, acknowledge and resolve alerts."),
    "tail": _needs_worker("tail", "Print the live mirror in the terminal."),
    "tokens": _needs_worker("tokens", "Make API tokens for the dashboard and the HTTP API."),
    "migrate": _needs_worker("migrate", "Move Redis keys of the old layout to the {prefix} one."),
}
