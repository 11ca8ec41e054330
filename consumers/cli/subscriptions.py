"""``eventbus subscriptions``: list, add, update and remove API-defined subscriptions.

They change the console store directly (as ``/v1/subscriptions`` does),
with the same checks as ``config check``; YAML-defined subscriptions are
listed with ``source: config`` and cannot be changed here.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from eventbus.cli import EXIT_USAGE, Context, fail

from .console_edit import actor, body_options, fields_of, print_item, with_console
from .deliveries import print_table

__all__ = ["command"]


@click.group("subscriptions")
def command() -> None:
    """Subscriptions: the YAML's (read-only) and the API-defined ones of each team."""


@command.command(
    "list",
    epilog="""\b
Examples:
  eventbus subscriptions list
  eventbus subscriptions list --team team-1 --json""",
)
@click.option("--team", help="Only this team's API-defined ones (and the YAML's).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@click.pass_obj
def list_(ctx: Context, team: str | None, as_json: bool) -> None:
    """Every subscription with its source (config or api), team, events and channels."""
    teams = frozenset({team}) if team else None
    rows = with_console(ctx, lambda console: console.items("subscription", teams))
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, sort_keys=True) + "\n")
        return
    print_table(
        [
            {
                **row,
                "events": ",".join(row.get("events", [])),
                "channels": ",".join(row.get("channels", [])),
            }
            for row in rows
        ],
        [
            ("name", "name"),
            ("source", "source"),
            ("team", "team"),
            ("events", "events"),
            ("channels", "channels"),
        ],
    )


@command.command(
    "add",
    epilog="""\b
Examples:
  eventbus subscriptions add team1-errors --team team-1 --events 'capsule.*' \\
      --channel console --set outcomes=[error]
  eventbus subscriptions update team1-errors --set min_severity=warning
  eventbus subscriptions remove team1-errors

The fields are the YAML's (events, outcomes, channels, where, templates,
cooldown, group_by ...). Every worker applies the change within a second.""",
)
@click.argument("name")
@click.option("--team", required=True, help="The team whose events it matches.")
@click.option("--events", "events", multiple=True, help="Event type pattern (repeatable).")
@click.option("--channel", "channels", multiple=True, help="Channel to deliver to (repeatable).")
@body_options
@click.pass_obj
def add(
    ctx: Context,
    name: str,
    team: str,
    events: tuple[str, ...],
    channels: tuple[str, ...],
    sets: tuple[str, ...],
    as_json: str | None,
) -> None:
    """Add an API-defined subscription of one team."""
    body: dict[str, Any] = {**fields_of(sets, as_json), "name": name}
    if events:
        body["events"] = list(events)
    if channels:
        body["channels"] = list(channels)
    view = with_console(ctx, lambda console: console.create("subscription", body, team, actor()))
    print_item(view, "added")


@command.command(
    "update",
    epilog="""\b
Examples:
  eventbus subscriptions update team1-errors --set min_severity=warning

--unset KEY removes a field (back to its default).""",
)
@click.argument("name")
@click.option("--unset", multiple=True, metavar="KEY", help="Remove a field (repeatable).")
@body_options
@click.pass_obj
def update(
    ctx: Context, name: str, unset: tuple[str, ...], sets: tuple[str, ...], as_json: str | None
) -> None:
    """Change fields of an API-defined subscription (see `subscriptions add --help`)."""
    patch: dict[str, Any] = {**fields_of(sets, as_json), **dict.fromkeys(unset)}
    if not patch:
        fail("nothing to change: give --set KEY=VALUE, --unset KEY or --json", EXIT_USAGE)
    view = with_console(
        ctx, lambda console: console.update("subscription", name, patch, None, actor())
    )
    print_item(view, "updated")


@command.command(
    "remove",
    epilog="""\b
Examples:
  eventbus subscriptions remove team1-errors""",
)
@click.argument("name")
@click.pass_obj
def remove(ctx: Context, name: str) -> None:
    """Remove an API-defined subscription (see `subscriptions add --help`)."""
    view = with_console(ctx, lambda console: console.delete("subscription", name, None, actor()))
    print_item(view, "removed")
