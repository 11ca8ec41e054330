"""``eventbus silence``: mute a team's matching events for a while, list and end silences."""

from __future__ import annotations

import json
import os
import pwd
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from eventbus.brokers.redis_streams import connect
from eventbus.cli import EXIT_USAGE, Context, fail, run_async
from eventbus.durations import format_duration, parse_duration
from eventbus.keys import Keys

from ..routing.silence_rules import new_silence
from ..store.silences import Silence, SilenceError, SilenceStore, format_time
from .deliveries import print_table

__all__ = ["command"]

T = TypeVar("T")


@click.group("silence")
def command() -> None:
    """Silences: the matching events of one team are recorded as silenced, not sent.

    Every worker honours a new silence within a second, and an ended one
    stops matching at its end. Matchers: PATH=VALUE (a glob when VALUE holds
    *), PATH!=VALUE, PATH=~REGEX, PATH!~REGEX; paths as in `where` filters
    (event, outcome, severity, team, error, actor.type|id|name,
    resource.type|id, resource, metadata.<key>).
    """


def _with_store(ctx: Context, action: Callable[[SilenceStore], Awaitable[T]]) -> T:
    settings = ctx.settings()

    async def run() -> T:
        redis = connect(settings.broker.redis_url.get_secret_value())
        try:
            return await action(SilenceStore(redis, Keys(settings.broker.prefix)))
        finally:
            await redis.aclose()

    return run_async(run)


def _author() -> str:
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        user = "cli"
    return f"{user}@{socket.gethostname()}"


def _seconds(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@command.command(
    "add",
    epilog="""\b
Examples:
  eventbus silence add --team team-1 --match 'event=host.*' \\
      --match metadata.region=eu-west --for 2h --comment "maintenance"

Prints the new silence's id (for `eventbus silence expire ID`). --by names
who made it (default: user@host); it shows in every silenced record.""",
)
@click.option("--team", required=True, help="The team whose events it mutes.")
@click.option(
    "--match",
    "matchers",
    multiple=True,
    required=True,
    metavar="MATCHER",
    help="PATH=VALUE, PATH!=VALUE, PATH=~REGEX or PATH!~REGEX; repeat: all must match.",
)
@click.option(
    "--for", "duration", required=True, callback=_seconds, help="How long, e.g. 30m, 2h, 1d."
)
@click.option("--comment", required=True, help="Why (shown in every silenced record).")
@click.option("--by", "author", default=None, help="Who makes it (default: user@host).")
@click.pass_obj
def add(
    ctx: Context,
    team: str,
    matchers: tuple[str, ...],
    duration: float,
    comment: str,
    author: str | None,
) -> None:
    """Mute the team's events that match every --match, for --for."""
    now = time.time()
    try:
        silence = new_silence(
            team=team,
            matchers=list(matchers),
            duration=duration,
            comment=comment,
            created_by=author or _author(),
            now=now,
        )
    except SilenceError as exc:
        click.secho("the silence is not valid:", fg="red", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(EXIT_USAGE)

    async def store_it(store: SilenceStore) -> None:
        await store.add(silence, now)

    _with_store(ctx, store_it)
    click.echo(silence.id)
    click.echo(
        f"silenced team {team} until {format_time(silence.ends_at)} "
        f"({format_duration(duration)}): {' '.join(silence.matchers)}",
        err=True,
    )


@command.command(
    "list",
    epilog="""\b
Examples:
  eventbus silence list

--team shows one team's; --json prints JSON lines (matchers as a list).""",
)
@click.option("--team", default=None, help="Only this team's silences.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@click.pass_obj
def list_(ctx: Context, team: str | None, as_json: bool) -> None:
    """Show the silences in force, soonest end first."""

    async def read(store: SilenceStore) -> list[Silence]:
        return (await store.load(time.time()))[1]

    silences = [s for s in _with_store(ctx, read) if team is None or s.team == team]
    if as_json:
        for silence in silences:
            sys.stdout.write(json.dumps(silence.to_dict()) + "\n")
        return
    rows: list[dict[str, Any]] = [
        {**s.to_dict(), "matchers": " ".join(s.matchers), "comment": s.comment[:50]}
        for s in silences
    ]
    print_table(
        rows,
        [
            ("id", "id"),
            ("team", "team"),
            ("ends_at", "ends"),
            ("matchers", "matchers"),
            ("created_by", "by"),
            ("comment", "comment"),
        ],
    )


@command.command(
    "expire",
    epilog="""\b
Examples:
  eventbus silence expire --team team-1 --all

`eventbus silence expire ID` ends the silence with that id (from `add` or
`list`); the team's events are sent again within a second.""",
)
@click.argument("ids", nargs=-1)
@click.option("--team", default=None, help="With --all: that team's silences.")
@click.option("--all", "everything", is_flag=True, help="Every silence (of --team).")
@click.pass_obj
def expire(ctx: Context, ids: tuple[str, ...], team: str | None, everything: bool) -> None:
    """End silences now: the ones named, or --all (of one --team)."""
    if bool(ids) == everything:
        fail(
            "say which silences to end: their IDs (the first column of `eventbus silence "
            "list`), or --all (with --team for one team's)",
            EXIT_USAGE,
        )

    async def end(store: SilenceStore) -> tuple[list[str], list[str]]:
        names = list(ids)
        if everything:
            held = (await store.load(time.time()))[1]
            names = [s.id for s in held if team is None or s.team == team]
        done: list[str] = []
        missing: list[str] = []
        for silence_id in names:
            (done if await store.expire(silence_id) else missing).append(silence_id)
        return done, missing

    done, missing = _with_store(ctx, end)
    for silence_id in done:
        click.echo(f"expired {silence_id}")
    if everything:
        click.echo(f"expired {len(done)}", err=True)
    if missing:
        fail(f"no silence in force with id {', '.join(missing)} (see `eventbus silence list`)")
