"""The `eventbus` command line: the root group lists and helps every contributed command."""

from __future__ import annotations

import click
import pytest

from eventbus.cli import cli
from tests.eventbus.cli_support import run

# -- help ------------------------------------------------------------------------------


def _commands() -> list[tuple[str, ...]]:
    ctx = click.Context(cli)
    found: list[tuple[str, ...]] = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += [(name, sub) for sub in command.list_commands(ctx)]
        else:
            found.append((name,))
    return found


def test_group_help_shows_examples_and_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert "eventbus publish --type capsule.create" in result.output
    for name in ("publish", "config"):
        assert name in result.output


def test_every_command_is_listed() -> None:
    commands = _commands()
    assert ("publish",) in commands
    assert ("config", "check") in commands


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_every_command_help_shows_examples(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output
    assert f"eventbus {path[0]}" in result.output or f"{path[0]} {path[-1]}" in result.output
