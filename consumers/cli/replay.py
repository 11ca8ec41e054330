"""``eventbus replay``: dispatch a range of the stream again (see ``consumers.replay``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from eventbus.brokers.redis_streams import connect
from eventbus.cli import EXIT_USAGE, Context, fail, run_async
from eventbus.durations import parse_duration
from eventbus.keys import split_entry

from ..replay import Planned, Replay, ReplayReport, check_stream_id

__all__ = ["command"]


@click.command(
    "replay",
    epilog="""\b
Examples:
  eventbus replay --since 2h --dry-run
  eventbus replay --since 1d --until 23h --channel ops-hook --team team-1 --dry-run
  eventbus replay --from-id 1732370000000-0 --to-id 1732373600000-0 --dry-run

With broker.partitions > 1, --since/--until replay every partition; a stream
id names one partition: 1732370000000-0@2 is partition 2's (a plain id is
partition 0's), as the ids in dead letters and publish results show them.""",
)
@click.option("--since", help="From this long ago (30m, 2h) or this time (RFC 3339).")
@click.option("--until", help="Up to this long ago or this time (default: now).")
@click.option(
    "--from-id", help="From this stream entry id, ID@PARTITION when partitioned (not --since)."
)
@click.option("--to-id", help="Up to this stream entry id (instead of --until).")
@click.option("--subscription", help="Only through this subscription.")
@click.option("--channel", help="Only to this channel (through the subscriptions naming it).")
@click.option("--team", help="Only events of this team.")
@click.option("--dry-run", is_flag=True, help="Print what would be sent; queue nothing.")
@click.pass_obj
def command(
    ctx: Context,
    since: str | None,
    until: str | None,
    from_id: str | None,
    to_id: str | None,
    subscription: str | None,
    channel: str | None,
    team: str | None,
    dry_run: bool,
) -> None:
    """Dispatch the stream's events of a range again, as new deliveries.

    Each event in the range is matched against the subscriptions as a worker
    does (routing such as silences, cooldowns and grouping is not applied
    again) and every delivery is queued for the workers with a new delivery
    id, its record naming the original (replay_of). Only entries the stream
    still holds (consumer.retention_min_age) can be replayed.
    """
    if subscription and channel:
        fail("give --subscription or --channel, not both", EXIT_USAGE)
    settings = ctx.settings()
    parts = _partitions(from_id, to_id, settings.broker.partitions)
    low, high = _range(since, until, _raw(from_id), _raw(to_id))

    async def replay_range() -> ReplayReport:
        redis = connect(settings.broker.redis_url.get_secret_value())
        try:
            report: ReplayReport | None = None
            for part in parts:
                try:
                    replay = Replay(
                        redis,
                        settings,
                        subscription=subscription,
                        channel=channel,
                        team=team,
                        partition=part,
                        run_id=None if report is None else report.run_id,
                    )
                except ValueError as exc:
                    fail(str(exc), EXIT_USAGE)
                report = _merged(report, await _run(replay, low, high, dry_run))
            assert report is not None
            return report
        finally:
            await redis.aclose()

    report = run_async(replay_range)
    _summary(report, dry_run)


def _partitions(from_id: str | None, to_id: str | None, partitions: int) -> list[int]:
    """The partitions a range covers: all for times, the one an id names."""
    try:
        named = {split_entry(text)[1] for text in (from_id, to_id) if text and "@" in text}
    except ValueError as exc:
        fail(f"--from-id/--to-id: {exc}; e.g. 1732370000000-0@2", EXIT_USAGE)
    if from_id or to_id:
        named |= {0} if not named else set()
    if len(named) > 1:
        fail("--from-id and --to-id name different partitions: give one partition's", EXIT_USAGE)
    for part in named:
        if part >= partitions:
            fail(
                f"{from_id or to_id!r} names partition {part}, but broker.partitions is "
                f"{partitions} (partitions 0 to {partitions - 1})",
                EXIT_USAGE,
            )
    return sorted(named) if named else list(range(partitions))


def _raw(entry_id: str | None) -> str | None:
    return None if entry_id is None else entry_id.partition("@")[0]


def _merged(total: ReplayReport | None, report: ReplayReport) -> ReplayReport:
    if total is None:
        return report
    total.entries += report.entries
    total.matched += report.matched
    total.queued += report.queued
    total.invalid += report.invalid
    if report.first_retained and (
        not total.first_retained or _ms(report.first_retained) < _ms(total.first_retained)
    ):
        total.first_retained = report.first_retained
    return total


def _range(
    since: str | None, until: str | None, from_id: str | None, to_id: str | None
) -> tuple[str, str]:
    """The XRANGE bounds (stream ids or milliseconds) of the options."""
    if since and from_id:
        fail("give --since or --from-id, not both", EXIT_USAGE)
    if until and to_id:
        fail("give --until or --to-id, not both", EXIT_USAGE)
    if not since and not from_id:
        fail("say where to start: --since 2h or --from-id STREAM_ID", EXIT_USAGE)
    now = time.time()
    try:
        low = check_stream_id(from_id, "--from-id") if from_id else _millis(since, now, "--since")
        high = (
            check_stream_id(to_id, "--to-id")
            if to_id
            else (_millis(until, now, "--until") if until else "+")
        )
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    return low, high


def _millis(text: Any, now: float, what: str) -> str:
    """A duration ago or an RFC 3339 time, as stream milliseconds."""
    try:
        return str(int((now - parse_duration(text)) * 1000))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{what}: {str(text)[:40]!r} is neither a duration (30m, 2h, 7d) "
            "nor a time (2026-01-31T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{what}: {text!r} has no time zone; add Z for UTC")
    return str(int(moment.timestamp() * 1000))


async def _run(replay: Replay, low: str, high: str, dry_run: bool) -> ReplayReport:
    report = ReplayReport(replay.run_id, first_retained=await replay.first_retained())
    bounds = await replay.bounds(low, high)
    if bounds is None:
        return report
    with _Progress(bounds) as advance:
        async for page in replay.pages(low, high):
            planned = [
                item for entry_id, raw in page for item in replay.plan(entry_id, raw, report)
            ]
            if dry_run:  # printed as it goes: a long range is not held in memory
                _print_planned(planned)
            else:
                await replay.queue(planned)
            advance(page[-1][0], report)
    return report


class _Progress:
    """A bar over the range's time on a terminal; a line per page of counts otherwise."""

    def __init__(self, bounds: tuple[str, str]) -> None:
        self.start, self.end = (_ms(entry_id) for entry_id in bounds)
        self.done = self.start
        self.tty = sys.stderr.isatty()
        self.bar: Any = None

    def __enter__(self) -> Callable[[str, ReplayReport], None]:
        if self.tty:
            length = max(1, self.end - self.start)
            self.bar = click.progressbar(length=length, label="replaying", file=sys.stderr)
            self.bar.__enter__()
        return self.advance

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def advance(self, entry_id: str, report: ReplayReport) -> None:
        if self.bar is not None:
            now = _ms(entry_id)
            self.bar.update(now - self.done)
            self.done = now
        else:
            click.echo(f"read {report.entries} entries, {report.queued} deliveries", err=True)


def _ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])


def _print_planned(planned: list[Planned]) -> None:
    for item in planned:
        click.echo(
            f"{item.entry_id}  {item.event.event}  team {item.event.team_id}  "
            f"{item.subscription} -> {item.channel}  (replay of {item.replay_of})"
        )


def _summary(report: ReplayReport, dry_run: bool) -> None:
    verb = "would queue" if dry_run else "queued"
    click.echo(
        f"replay {report.run_id}: {report.entries} entries read, {report.matched} matched, "
        f"{report.queued} deliveries {verb}"
        + (f", {report.invalid} invalid entries skipped" if report.invalid else "")
    )
    if report.entries == 0:
        oldest = report.first_retained
        click.echo(
            "nothing in that range"
            + (
                f" (the stream holds entries from {oldest} on; older ones were trimmed)"
                if oldest
                else ""
            )
        )
