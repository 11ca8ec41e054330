"""``eventbus deliveries``: query delivery records."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click

from eventbus.brokers.redis_streams import connect
from eventbus.cli import EXIT_USAGE, Context, fail, run_async
from eventbus.durations import parse_duration
from eventbus.keys import Keys

from ..store import DeliveryStatus
from ..store.partitioned import delivery_store
from . import resend

__all__ = ["command", "print_table"]

STATES = tuple(status.value for status in DeliveryStatus)
_COLOURS = {
    "delivered": "green",
    "retrying": "yellow",
    "failed": "red",
    "skipped": "blue",
    # routed: settled without sending, on purpose
    "suppressed": "cyan",
    "grouped": "cyan",
    "silenced": "magenta",
    "merged": "cyan",
}


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    """A plain aligned table; colours the status column on a terminal."""
    if not rows:
        click.echo("(none)")
        return
    widths = [
        max(len(title), *(len(_text(row.get(key))) for row in rows)) for key, title in columns
    ]
    click.echo(
        "  ".join(
            title.upper().ljust(width) for (_, title), width in zip(columns, widths, strict=True)
        )
    )
    for row in rows:
        cells = []
        for (key, _), width in zip(columns, widths, strict=True):
            text = _text(row.get(key)).ljust(width)
            colour = _COLOURS.get(str(row.get(key))) if key == "status" else None
            cells.append(click.style(text, fg=colour) if colour else text)
        click.echo("  ".join(cells).rstrip())


def _text(value: Any) -> str:
    """A cell: nothing for a missing value (not "None")."""
    return "" if value is None else str(value)


def _cut(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())  # one line per row
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def rfc3339(ts: float | None) -> str | None:
    """A record's time as the envelope writes times: RFC 3339 UTC, milliseconds, ``Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_times(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("created_at", "updated_at", "next_attempt_at"):
        if key in row:
            row[key] = rfc3339(row[key])
    for attempt in row.get("history") or ():
        if isinstance(attempt, dict) and "at" in attempt:
            attempt["at"] = rfc3339(attempt["at"])
    return row


@click.group(
    "deliveries",
    invoke_without_command=True,
    epilog="""\b
Examples:
  eventbus deliveries --status failed --since 1h
  eventbus deliveries --status merged
  eventbus deliveries --event 01JD5Z7X3M0Q8R2T6V9W1Y4B7C
  eventbus deliveries --channel ops-hook --json | jq .last_error""",
)
@click.option("--event", "event_id", help="Only this event id.")
@click.option(
    "--status",
    type=click.Choice(STATES),
    help="Only records in this state; suppressed, grouped, silenced and merged are "
    "routing decisions that sent nothing (REFERS TO names the digest, silence or delivery).",
)
@click.option("--channel", help="Only this channel name.")
@click.option("--since", help="Only records updated within this duration, e.g. 30m, 2h, 7d.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines, with every attempt.")
@click.pass_context
def command(
    click_ctx: click.Context,
    event_id: str | None,
    status: str | None,
    channel: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show delivery records, newest first; `deliveries resend` sends them again."""
    if click_ctx.invoked_subcommand is not None:
        return  # its own options
    ctx: Context = click_ctx.obj
    settings = ctx.settings()
    since_ts = None
    if since:
        try:
            since_ts = time.time() - parse_duration(since)
        except ValueError as exc:
            fail(f"--since: {exc}", EXIT_USAGE)

    async def query_records() -> list[dict[str, Any]]:
        redis = connect(settings.broker.redis_url.get_secret_value())
        try:
            store = delivery_store(
                redis, Keys(settings.broker.prefix), partitions=settings.broker.partitions
            )
            records = await store.query(
                event_id=event_id,
                status=status,
                channel=channel,
                since=since_ts,
                limit=limit,
                history=as_json,
            )
        finally:
            await redis.aclose()
        return [r.to_dict() for r in records]

    rows = run_async(query_records)
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(_json_times(row)) + "\n")
        return
    _print_rows(rows)


command.add_command(resend.command)


def _print_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        row["updated"] = _when(row["updated_at"])
        row["next"] = _when(row["next_attempt_at"])
        row["error"] = _cut(row["last_error"], 50)
        row["why"] = _cut(row["reason"], 50) if row["status"] != "delivered" else ""
    print_table(
        rows,
        [
            ("updated", "updated"),
            ("status", "status"),
            ("channel", "channel"),
            ("event_type", "event"),
            ("event_id", "event id"),
            ("attempts", "tries"),
            ("last_status", "http"),
            ("next", "next attempt"),
            ("error", "last error"),
            ("why", "reason"),
            # routed records only: what explains them (digest, silence, delivering record)
            *([("refers_to", "refers to")] if any(row["refers_to"] for row in rows) else []),
        ],
    )
