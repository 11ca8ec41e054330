"""``eventbus migrate``: move Redis keys of the old layout to the ``{prefix}`` one."""

from __future__ import annotations

import click

from eventbus.brokers.redis_streams import connect
from eventbus.cli import Context, run_async

from ..store import MigrationReport, migrate_layout

__all__ = ["command"]


@click.command(
    "migrate",
    epilog="""\b
Examples:
  eventbus migrate
  eventbus --config /etc/eventbus/eventbus.yaml migrate

Workers migrate by themselves at start; run this once more after the last
worker of the old version stopped, to move the records it wrote meanwhile.
Safe to repeat: what is already moved is left alone.""",
)
@click.pass_obj
def command(ctx: Context) -> None:
    """Move keys of the old layout (<prefix>:...) to the {<prefix>}:... one."""
    settings = ctx.settings()

    async def migrate() -> MigrationReport:
        redis = connect(settings.broker.redis_url.get_secret_value())
        try:
            return await migrate_layout(
                redis, settings.broker.prefix, group=settings.consumer.group, force=True
            )
        finally:
            await redis.aclose()

    report = run_async(migrate)
    prefix = settings.broker.prefix
    if not report.moved and not report.folded:
        click.echo(f"nothing to move: every key of {prefix!r} is in the {{{prefix}}} layout")
        return
    click.echo(
        f"moved {report.moved} key(s) ({report.renamed} renamed, {report.merged} merged) "
        f"and {report.folded} stream entr{'y' if report.folded == 1 else 'ies'} "
        f"to the {{{prefix}}} layout"
    )
