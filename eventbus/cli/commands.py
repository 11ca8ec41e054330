"""The commands the core itself adds to ``eventbus`` (entry point ``eventbus.commands``).

Like every package's table, it imports nothing heavy: ``eventbus --help``
reads it without loading the command.
"""

from __future__ import annotations

from typing import Final

from .registry import CommandSpec

__all__ = ["COMMANDS"]

COMMANDS: Final = {
    "broker": CommandSpec(
        f"{__package__}.broker",
        "Declare the broker's topology (RabbitMQ exchanges and queues, Redis groups).",
    ),
}
