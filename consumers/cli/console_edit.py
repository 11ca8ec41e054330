"""What ``channels add|update|remove`` and ``subscriptions ...`` share: the console store.

These commands change the API-defined items directly in Redis (not over
HTTP), through the same checks, masking, sealing and audit as the API; the
audit names the operator as ``cli:<user>@<host>``. Fields are given as
``--set KEY=VALUE`` (VALUE read as YAML: numbers, lists, ``true``), or whole
as ``--json '{...}'``.
"""

from __future__ import annotations

import getpass
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import yaml

from eventbus.brokers.redis_streams import connect
from eventbus.cli import EXIT_FAILED, EXIT_USAGE, Context, fail, run_async
from eventbus.keys import Keys

from ..console import Console, ConsoleError, ConsoleStore
from ..validation import channel_problems, subscription_problems

__all__ = [
    "actor",
    "add_channel_commands",
    "body_options",
    "fields_of",
    "print_item",
    "with_console",
]

T = TypeVar("T")


def actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def with_console(ctx: Context, action: Callable[[Console], Awaitable[T]]) -> T:
    """Run ``action`` on the console of the configured Redis; refusals exit 1 or 2."""
    settings = ctx.settings(
        channel_validator=channel_problems, subscription_validator=subscription_problems
    )

    async def run() -> T:
        redis = connect(settings.broker.redis_url.get_secret_value())
        try:
            store = ConsoleStore(redis, Keys(settings.broker.prefix), settings.security)
            return await action(Console(settings, store))
        finally:
            await redis.aclose()

    try:
        return run_async(run)
    except ConsoleError as exc:
        problems = "".join(f"\n  - {problem}" for problem in exc.problems)
        fail(exc.message + problems, EXIT_USAGE if exc.status == 422 else EXIT_FAILED)


def _value(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        return text


def fields_of(sets: tuple[str, ...], as_json: str | None) -> dict[str, Any]:
    """The body given by ``--json`` and ``--set KEY=VALUE`` (the latter win)."""
    body: dict[str, Any] = {}
    if as_json:
        try:
            loaded = json.loads(as_json)
        except ValueError as exc:
            fail(f"--json is not JSON: {exc}", EXIT_USAGE)
        if not isinstance(loaded, dict):
            fail("--json must be a JSON object", EXIT_USAGE)
        body.update(loaded)
    for item in sets:
        key, equals, text = item.partition("=")
        if not equals or not key.strip():
            fail(f"--set {key[:40]!r}: use --set KEY=VALUE", EXIT_USAGE)
        body[key.strip()] = _value(text)
    return body


def body_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "--set", "sets", multiple=True, metavar="KEY=VALUE", help="A field (repeatable)."
    )(function)
    return click.option("--json", "as_json", help="Every field as one JSON object.")(function)


def print_item(view: dict[str, Any], verb: str) -> None:
    click.echo(
        f"{view['name']}: {verb} (team {view.get('team', '?')}); workers apply it within 1 s"
    )
    sys.stdout.write(json.dumps(view, sort_keys=True) + "\n")


@click.command(
    "add",
    epilog="""\b
Examples:
  eventbus channels add team1-alerts --team team-1 --type webhook \\
      --url https://hooks.example.com/team-1
  eventbus channels update team1-alerts --set timeout=5
  eventbus channels remove team1-alerts

Adds a channel owned by one team, as POST /v1/channels does. Secret fields
are stored encrypted (security.secret_key) and shown masked.""",
)
@click.argument("name")
@click.option("--team", required=True, help="The team that owns it.")
@click.option("--type", "type_", help="Channel type (or give --url with a service scheme).")
@click.option("--url", help="The channel URL (webhook target or shoutrrr-style).")
@body_options
@click.pass_obj
def add(
    ctx: Context,
    name: str,
    team: str,
    type_: str | None,
    url: str | None,
    sets: tuple[str, ...],
    as_json: str | None,
) -> None:
    """Add an API-defined channel of one team."""
    body = {**fields_of(sets, as_json), "name": name}
    body.update({k: v for k, v in (("type", type_), ("url", url)) if v is not None})
    view = with_console(ctx, lambda console: console.create("channel", body, team, actor()))
    print_item(view, "added")


@click.command(
    "update",
    epilog="""\b
Examples:
  eventbus channels update team1-alerts --set timeout=5

Secret fields sent back masked ("***") keep their stored value.""",
)
@click.argument("name")
@click.option("--unset", multiple=True, metavar="KEY", help="Remove a field (repeatable).")
@body_options
@click.pass_obj
def update(
    ctx: Context, name: str, unset: tuple[str, ...], sets: tuple[str, ...], as_json: str | None
) -> None:
    """Change fields of an API-defined channel (see `channels add --help`)."""
    patch: dict[str, Any] = {**fields_of(sets, as_json), **dict.fromkeys(unset)}
    if not patch:
        fail("nothing to change: give --set KEY=VALUE, --unset KEY or --json", EXIT_USAGE)
    view = with_console(ctx, lambda console: console.update("channel", name, patch, None, actor()))
    print_item(view, "updated")


@click.command(
    "remove",
    epilog="""\b
Examples:
  eventbus channels remove team1-alerts

A channel that a subscription still names is kept (remove it there first).""",
)
@click.argument("name")
@click.pass_obj
def remove(ctx: Context, name: str) -> None:
    """Remove an API-defined channel (see `channels add --help`)."""
    view = with_console(ctx, lambda console: console.delete("channel", name, None, actor()))
    print_item(view, "removed")


def add_channel_commands(group: click.Group) -> None:
    """Add ``add``, ``update`` and ``remove`` to ``eventbus channels``."""
    for each in (add, update, remove):
        group.add_command(each)
