"""The commands each package contributes, found through entry points.

Each command is an entry point in the ``eventbus.commands`` group, named
after the command, whose value is its package's table (command name ->
``CommandSpec``) in a module that imports nothing heavy. ``eventbus --help``
reads the tables only; running a command loads only its own package's table,
then its module, so ``eventbus publish`` never imports ``consumers``, and a
command whose extra is not installed says which one it needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Final

import click

from ..errors import EventBusError
from .common import missing_extra

__all__ = [
    "ENTRY_POINT_GROUP",
    "CommandSpec",
    "command_spec",
    "contributed_commands",
    "load_command",
]

ENTRY_POINT_GROUP: Final = "eventbus.commands"


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command, described without importing it."""

    module: str  # defines ``command`` (a click command or group)
    help: str  # the one line ``eventbus --help`` shows
    extra: str | None = None  # the extra whose packages ``module`` imports


@cache
def _entry_points() -> Mapping[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        other = found.get(entry.name)
        if other is not None and other.value != entry.value:
            raise EventBusError(
                f"command {entry.name!r} is contributed twice, by {other.value} and "
                f"{entry.value}: one of the {ENTRY_POINT_GROUP} entry points must drop it"
            )
        found[entry.name] = entry
    return found


@cache
def _table(entry: EntryPoint) -> Mapping[str, CommandSpec]:
    table: Mapping[str, CommandSpec] = entry.load()
    return table


def command_spec(name: str) -> CommandSpec | None:
    """The command's description, importing only its own package's table."""
    entry = _entry_points().get(name)
    if entry is None:
        return None
    spec = _table(entry).get(name)
    if spec is None:
        raise EventBusError(
            f"the {ENTRY_POINT_GROUP} entry point {name!r} names {entry.value}, "
            f"which has no {name!r} command"
        )
    return spec


def contributed_commands() -> dict[str, CommandSpec]:
    """Every command of every installed package, by name."""
    found: dict[str, CommandSpec] = {}
    for name in _entry_points():
        spec = command_spec(name)
        if spec is not None:
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
