"""``eventbus deliveries resend``: one more attempt of deliveries, by id or by state.

The attempts are not made here: each resend becomes a retry due now, which
the workers send through the channels' rate limits (``consumers.resend``).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Final

import click
import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import connect
from eventbus.cli import EXIT_FAILED, EXIT_USAGE, Context, fail, run_async
from eventbus.durations import parse_duration
from eventbus.keys import Keys
from eventbus.settings import Settings

from ..resend import Resend, Resent
from ..store.partitioned import delivery_store

__all__ = ["command"]

_BY: Final = "the CLI (eventbus deliveries resend)"
_STATES: Final = ("failed", "skipped", "retrying", "delivered")


@click.command(
    "resend",
    epilog="""\b
Examples:
  eventbus deliveries resend --status failed --since 1h
  eventbus deliveries resend --status failed --channel ops-hook --dry-run""",
)
@click.argument("ids", nargs=-1)
@click.option(
    "--status",
    type=click.Choice(_STATES),
    help="Resend every record in this state (instead of IDs); delivered needs --force.",
)
@click.option("--since", help="With --status: only records updated within this duration.")
@click.option("--channel", help="With --status: only this channel.")
@click.option("--team", help="With --status: only this team.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--force", is_flag=True, help="Send delivered ones again too.")
@click.option("--dry-run", is_flag=True, help="Say what would be resent; change nothing.")
@click.pass_obj
def command(
    ctx: Context,
    ids: tuple[str, ...],
    status: str | None,
    since: str | None,
    channel: str | None,
    team: str | None,
    limit: int,
    force: bool,
    dry_run: bool,
) -> None:
    """Send deliveries again: the same delivery id (webhook-id), recorded in its history.

    Each becomes a retry due now, sent by the workers through the channel's
    rate limits. Failed and skipped records keep their event; a delivered one
    (with --force) can be resent only while its stream entry is retained.
    """
    if bool(ids) == bool(status):
        fail("give delivery IDs or --status STATE (not both)", EXIT_USAGE)
    if ids and (since or channel or team):
        fail("--since, --channel and --team select records with --status; not with IDs", EXIT_USAGE)
    if status == "delivered" and not force:
        fail("--status delivered sends delivered ones again: add --force", EXIT_USAGE)
    since_ts = None
    if since:
        try:
            since_ts = time.time() - parse_duration(since)
        except ValueError as exc:
            fail(f"--since: {exc}", EXIT_USAGE)
    settings = ctx.settings()

    async def resend_chosen() -> list[Resent]:
        redis = connect(settings.broker.redis_url.get_secret_value())
        try:
            keys = Keys(settings.broker.prefix)
            chosen = list(ids)
            if status:
                store = delivery_store(redis, keys, partitions=settings.broker.partitions)
                found = await store.query(
                    status=status,
                    channel=channel,
                    teams=None if team is None else [team],
                    since=since_ts,
                    limit=limit,
                )
                chosen = [record.id for record in found]
            return await _resend(_resender(redis, keys, settings), chosen, force, dry_run)
        finally:
            await redis.aclose()

    results = run_async(resend_chosen)
    _report(results, bulk=status is not None, dry_run=dry_run)
    if not status and not all(done.scheduled for done in results):
        sys.exit(EXIT_FAILED)


def _resender(redis: aioredis.Redis, keys: Keys, settings: Settings) -> Resend:
    return Resend(
        redis,
        keys,
        settings.consumer.record_ttl,
        subscriptions=[sub.name for sub in settings.subscriptions],
        channels=[spec.name for spec in settings.channels],
        partitions=settings.broker.partitions,
    )


async def _resend(resend: Resend, ids: list[str], force: bool, dry_run: bool) -> list[Resent]:
    out: list[Resent] = []
    with _progress(len(ids)) as advance:
        for record_id in ids:
            if dry_run:
                out.append(await resend.check(record_id, force=force))
            else:
                out.append(await resend.resend(record_id, force=force, by=_BY))
            advance()
    return out


@contextmanager
def _progress(total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on a terminal for many ids; nothing otherwise (the summary says it)."""
    if total < 20 or not sys.stderr.isatty():
        yield lambda: None
        return
    with click.progressbar(length=total, label="resending", file=sys.stderr) as bar:
        yield lambda: bar.update(1)


def _report(results: Iterable[Resent], *, bulk: bool, dry_run: bool) -> None:
    results = list(results)
    verb = "would schedule" if dry_run else "scheduled"
    if not bulk:
        for done in results:
            text = verb if done.scheduled and dry_run else done.note
            click.echo(f"{done.delivery_id}  {text if done.scheduled else 'skipped: ' + text}")
        return
    if dry_run:
        for done in results:
            if done.scheduled:
                click.echo(f"{done.delivery_id}  would schedule")
    scheduled = sum(1 for done in results if done.scheduled)
    skipped = Counter(done.note for done in results if not done.scheduled)
    click.echo(f"{scheduled} {verb}, {sum(skipped.values())} skipped")
    for note, count in skipped.most_common():
        click.echo(f"  {count} skipped: {note}")
