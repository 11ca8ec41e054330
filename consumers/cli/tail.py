"""``eventbus tail``: print the live mirror in a terminal, straight from the broker.

On Redis it subscribes to the same Pub/Sub channels as the SSE endpoint (one
per team, or the pattern for every team); in RabbitMQ mode it reads an
exclusive auto-delete queue bound to ``<prefix>.live``. Either way it shows
durable and transient events as they are published. It is a tail, not a
history: nothing is replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from eventbus.brokers.cluster import stream_pubsub
from eventbus.brokers.redis_streams import connect, translated
from eventbus.cli import EXIT_USAGE, Context, fail, missing_extra, run_async
from eventbus.errors import EnvelopeError
from eventbus.keys import Keys
from eventbus.live import LiveMessage, live_message, parse_live
from eventbus.settings import Settings
from eventbus.terminal import printable

from ..server.live import LiveFilter, parse_types

if TYPE_CHECKING:
    from eventbus.brokers.rabbitmq import RabbitMQ

__all__ = ["command"]

_OUTCOME_COLOURS = {"success": "green", "error": "red"}


@click.command(
    "tail",
    epilog="""\b
Examples:
  eventbus tail
  eventbus tail --team team-1 --type 'capsule.*' --outcome error
  eventbus tail --json | jq -c .event

\b
--json prints the live mirror messages as they are: {"stream_id": ..., "event": {...}}
(stream_id only for durable events). Colours are used on a terminal only.""",
)
@click.option("--team", "teams", multiple=True, help="Only this team (repeatable).")
@click.option(
    "--type",
    "types",
    multiple=True,
    help="Only event types matching this glob, e.g. 'capsule.*' (repeatable, or comma-separated).",
)
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    type=click.Choice(["success", "error", "none"]),
    help="Only this outcome (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON message per line.")
@click.option("--count", type=click.IntRange(min=1), help="Exit after this many events.")
@click.pass_obj
def command(
    ctx: Context,
    teams: tuple[str, ...],
    types: tuple[str, ...],
    outcomes: tuple[str, ...],
    as_json: bool,
    count: int | None,
) -> None:
    """Print the live mirror (durable and transient events) as it happens."""
    settings = ctx.settings()
    globs = [t.strip() for value in types for t in value.split(",") if t.strip()]
    try:
        live_filter = LiveFilter(
            frozenset(teams) if teams else None,
            parse_types(globs),
            frozenset(outcomes) if outcomes else None,
        )
    except ValueError as exc:
        fail(f"--type: {exc}", EXIT_USAGE)
    # Ctrl-C is how tail is meant to stop: no traceback, no "Aborted!"
    rabbitmq = _rabbitmq(settings)
    with contextlib.suppress(KeyboardInterrupt):
        if rabbitmq is not None:
            run_async(lambda: _tail_broker(rabbitmq, live_filter, teams, as_json, count))
        else:
            run_async(lambda: _tail(settings, live_filter, teams, as_json, count))


def _rabbitmq(settings: Settings) -> RabbitMQ | None:
    """In RabbitMQ mode the live mirror is the ``<prefix>.live`` exchange."""
    if settings.broker.kind != "rabbitmq":
        return None
    try:
        from eventbus.brokers.rabbitmq import RabbitMQ
    except ModuleNotFoundError as exc:
        missing_extra("rabbitmq", exc, "eventbus tail with broker.kind: rabbitmq")
    return RabbitMQ.from_settings(settings, consuming=False)


async def _tail_broker(
    broker: RabbitMQ,
    live_filter: LiveFilter,
    teams: Sequence[str],
    as_json: bool,
    count: int | None,
) -> None:
    """The same output, read from an exclusive queue bound to ``<prefix>.live``."""
    async with broker, broker.live() as messages:
        _tailing(teams)
        shown = 0
        async for raw in messages:
            if count is not None and shown >= count:
                return
            if _show(raw, live_filter, as_json, streams=False):
                shown += 1
            if count is not None and shown >= count:
                return


async def _tail(
    settings: Settings,
    live_filter: LiveFilter,
    teams: Sequence[str],
    as_json: bool,
    count: int | None,
) -> None:
    keys = Keys(settings.broker.prefix)
    redis = connect(
        settings.broker.redis_url.get_secret_value(), socket_timeout=settings.broker.socket_timeout
    )
    pubsub: Any = None
    try:
        async with translated("subscribe to the live mirror"):
            # On a cluster: on the stream's master, where durable publishes PUBLISH.
            pubsub = await stream_pubsub(redis, keys.events)
            if teams:
                await pubsub.subscribe(*(keys.live(team) for team in teams))
            else:
                await pubsub.psubscribe(keys.live_pattern)
            await _confirmed(pubsub, len(teams) or 1)
        _tailing(teams)
        shown = 0
        while count is None or shown < count:
            async with translated("read the live mirror"):
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None or message["type"] not in ("message", "pmessage"):
                continue
            if _show(message["data"], live_filter, as_json):
                shown += 1
    finally:
        if pubsub is not None:
            await pubsub.aclose()
        await redis.aclose()


def _tailing(teams: Sequence[str]) -> None:
    where = ", ".join(teams) if teams else "every team"
    click.echo(f"tailing the live mirror of {where} (Ctrl-C to stop)", err=True)


def _show(raw: bytes | str, live_filter: LiveFilter, as_json: bool, streams: bool = True) -> bool:
    """Print one mirror message if it passes the filter; whether it was printed.

    ``streams``: durable messages carry a stream id (Redis), so one without is
    marked live only; RabbitMQ's mirror carries none for either kind.
    """
    try:
        live = parse_live(raw)
    except EnvelopeError as exc:
        click.secho(f"skipped an invalid message: {exc}", fg="yellow", err=True)
        return False
    if not live_filter.matches(live.event):
        return False
    click.echo(_as_json(live) if as_json else _as_line(live, streams))
    return True


async def _confirmed(pubsub: Any, expected: int) -> None:
    """Wait until Redis confirmed every subscription (nothing is missed after)."""
    async with asyncio.timeout(10):
        seen = 0
        while seen < expected:
            reply = await pubsub.get_message(timeout=1.0)
            if reply is not None and reply["type"] in ("subscribe", "psubscribe"):
                seen += 1


def _as_json(live: LiveMessage) -> str:
    return live_message(live.stream_id, live.data)


def _as_line(live: LiveMessage, streams: bool = True) -> str:
    """One line per event; publishers' text is escaped before our own styling is added."""
    event = live.event
    outcome = event.outcome_name
    when = event.timestamp.strftime("%H:%M:%S.") + f"{event.timestamp.microsecond // 1000:03d}"
    actor = event.actor.name or event.actor.id or event.actor.type.value
    parts = [
        click.style(when, dim=True),
        printable(event.team_id),
        click.style(event.event, bold=True),
        click.style(f"{outcome:<7}", fg=_OUTCOME_COLOURS.get(outcome)),
        printable(f"{event.resource.type}:{event.resource.id}"),
        printable(actor),
    ]
    if event.error:
        parts.append(click.style(f"error: {printable(event.error)}", fg="red"))
    if streams and live.stream_id is None:
        parts.append(click.style("(live only)", dim=True))
    return "  ".join(parts)
