"""The commands each package contributes, found through entry points.

A package declares one entry point in the ``eventbus.commands`` group naming a
table (command name -> ``CommandSpec``) in a module that imports nothing
heavy. ``eventbus --help`` reads the tables only; a command's own module is
imported when that command runs, so ``eventbus publish`` never loads the
daemon, and a command whose extra is not installed says which one it needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Final

import click

from ..errors import EventBusError
from .common import missing_extra

__all__ = ["ENTRY_POINT_GROUP", "CommandSpec", "contributed_commands", "load_command"]

ENTRY_POINT_GROUP: Final = "eventbus.commands"


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command, described without importing it."""

    module: str  # defines ``command`` (a click command or group)
    help: str  # the one line ``eventbus --help`` shows
    extra: str | None = None  # the extra whose packages ``module`` imports


@cache
def contributed_commands() -> Mapping[str, CommandSpec]:
    """Every command of every installed package, by name."""
    found: dict[str, CommandSpec] = {}
    owners: dict[str, str] = {}
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        table: Mapping[str, CommandSpec] = entry.load()
        for name, spec in table.items():
            if name in owners:
                raise EventBusError(
                    f"command {name!r} is contributed twice, by {owners[name]} and "
                    f"{entry.value}: one of the {ENTRY_POINT_GROUP} entry points must drop it"
                )
            owners[name] = entry.value
            found[name] = spec
    return found


def load_command(name: str, spec: CommandSpec) -> click.Command:
    """Import the command's module; a missing third-party module exits 2 with the fix."""
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        # A module of this project missing is a bug, not an extra to install.
        if spec.extra is None or missing in ("eventbus", spec.module.partition(".")[0]):
            raise
        missing_extra(spec.extra, exc, f"eventbus {name}")
    command: click.Command = module.command
    return command
