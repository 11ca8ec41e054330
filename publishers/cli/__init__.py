"""The commands ``publishers`` adds to ``eventbus`` (entry point ``eventbus.commands``)."""

from __future__ import annotations

from typing import Final

from eventbus.cli import CommandSpec

__all__ = ["COMMANDS"]

COMMANDS: Final = {
    "publish": CommandSpec(
        "publishers.cli.publish", "Publish events (one from flags, or JSONL from a file)."
    ),
}
