"""``eventbus dlq``: list and redrive dead letters."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from eventbus.brokers.redis_streams import connect
from eventbus.cli import EXIT_USAGE, Context, fail, missing_extra, run_async
from eventbus.keys import Keys
from eventbus.settings import Settings

from ..store import DeadLetters
from .deliveries import print_table

if TYPE_CHECKING:
    from eventbus.brokers.rabbitmq import RabbitMQ

__all__ = ["command"]


@click.group("dlq")
def command() -> None:
    """Dead letters: entries that could not be processed, with the reason."""


@command.command(
    "list",
    epilog="""\b
Examples:
  eventbus dlq list
  eventbus dlq list --json | jq -r .reason | sort | uniq -c""",
)
@click.option("--limit", type=click.IntRange(1, 100000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@click.pass_obj
def list_(ctx: Context, limit: int, as_json: bool) -> None:
    """Show dead letters, oldest first."""
    settings = ctx.settings()
    rabbitmq = _rabbitmq(settings)

    async def read_dead_letters() -> tuple[int, list[dict[str, Any]]]:
        if rabbitmq is not None:
            async with rabbitmq as broker:
                letters = await broker.dead_letters(limit)
                return await broker.dead_letter_count(), [d.to_dict() for d in letters]
        redis = connect(settings.broker.redis_url.get_secret_value())
        try:
            dead = DeadLetters(redis, Keys(settings.broker.prefix), settings.broker.partitions)
            return await dead.count(), [d.to_dict() for d in await dead.entries(limit)]
        finally:
            await redis.aclose()

    total, rows = run_async(read_dead_letters)
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    for row in rows:
        row["when"] = datetime.fromtimestamp(float(str(row["at"])), UTC).strftime(
            "%Y-%m-%d %H:%M:%SZ"
        )
        row["error"] = str(row["error"])[:70]
    print_table(
        rows,
        [
            ("id", "id"),
            ("when", "when"),
            ("reason", "reason"),
            ("original_id", "original id"),
            ("error", "error"),
        ],
    )
    if total > len(rows):
        click.echo(f"... {total - len(rows)} more (use --limit)")


@command.command(
    "redrive",
    epilog="""\b
Examples:
  eventbus dlq redrive 1732370000000-0
  eventbus dlq redrive --all

Fix the cause first (a channel's configuration, a bad publisher): a redriven
entry that fails again returns to the dead letters.""",
)
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Redrive every dead letter.")
@click.pass_obj
def redrive(ctx: Context, ids: tuple[str, ...], everything: bool) -> None:
    """Put dead letters back on the event stream and remove them here."""
    if not ids and not everything:
        fail(
            "say which dead letters to put back on the stream: their IDs (the first "
            "column of `eventbus dlq list`), or --all for every one",
            EXIT_USAGE,
        )
    if ids and everything:
        fail("give dead-letter IDs or --all, not both", EXIT_USAGE)
    settings = ctx.settings()
    rabbitmq = _rabbitmq(settings)

    async def redrive_dead_letters() -> list[tuple[str, str]]:
        if rabbitmq is not None:
            async with rabbitmq as broker:
                return await broker.redrive(None if everything else list(ids))
        redis = connect(settings.broker.redis_url.get_secret_value())
        try:
            parts = settings.broker.partitions
            return await DeadLetters(redis, Keys(settings.broker.prefix), parts).redrive(
                None if everything else list(ids)
            )
        finally:
            await redis.aclose()

    moved = run_async(redrive_dead_letters)
    for old, new in moved:
        click.echo(f"{old} -> stream {new}")
    click.echo(f"redrove {len(moved)}")
    missing = set(ids) - {old for old, _ in moved}
    if missing:
        fail(f"not in the dead letters: {', '.join(sorted(missing))}")


def _rabbitmq(settings: Settings) -> RabbitMQ | None:
    """The RabbitMQ broker when broker.kind is rabbitmq (its extra may be missing)."""
    if settings.broker.kind != "rabbitmq":
        return None
    try:
        from eventbus.brokers.rabbitmq import RabbitMQ
    except ModuleNotFoundError as exc:
        missing_extra("rabbitmq", exc, "eventbus dlq with broker.kind: rabbitmq")
    return RabbitMQ.from_settings(settings)
