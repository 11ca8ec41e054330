"""``eventbus alerts``: list and show alerts, acknowledge and resolve them."""

from __future__ import annotations

import json
import os
import pwd
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from eventbus.brokers.redis_streams import connect
from eventbus.cli import Context, fail, run_async
from eventbus.durations import format_duration
from eventbus.envelope import AlertAction
from eventbus.keys import Keys
from publishers.client import Publisher

from ..alert_actions import ActionError, listing, operate
from ..store import Alert, AlertStatus, AlertStore, DeliveryRecord, DeliveryStore
from ..store.partitioned import delivery_store
from .deliveries import print_table, rfc3339

__all__ = ["command"]

T = TypeVar("T")
STATUSES = tuple(status.value for status in AlertStatus)
_TIMES = ("first_seen", "last_seen", "acknowledged_at", "resolved_at", "last_notified_at")
_EVENTS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class _Stores:
    alerts: AlertStore
    deliveries: DeliveryStore
    publisher: Publisher


def _with_stores(ctx: Context, action: Callable[[_Stores], Awaitable[T]]) -> T:
    settings = ctx.settings()

    async def run() -> T:
        redis = connect(settings.broker.redis_url.get_secret_value())
        keys = Keys(settings.broker.prefix)
        try:
            async with Publisher(settings, redis=redis) as publisher:
                records = delivery_store(redis, keys, partitions=settings.broker.partitions)
                stores = _Stores(AlertStore(redis, keys), records, publisher)
                return await action(stores)
        finally:
            await redis.aclose()

    return run_async(run)


def age(seconds: float) -> str:
    """At most two units: ``3h12m``, ``2d4h``, ``45s``."""
    text = format_duration(max(1.0, round(seconds)))
    units = [i for i, char in enumerate(text) if char.isalpha()]
    return text[: units[1] + 1] if len(units) > 1 else text


def _json(alert: Alert) -> dict[str, Any]:
    data = alert.to_dict()
    for name in _TIMES:
        data[name] = rfc3339(data[name])
    return data


@click.group(
    "alerts",
    epilog="""\b
Examples:
  eventbus alerts list
  eventbus alerts list --status firing --json""",
)
def command() -> None:
    """Alerts: one per team and alert key, raised, touched and resolved by the worker.

    Acknowledging or resolving one publishes an event with that alert action
    (the alert's event type and resource), so the worker updates the alert and
    every channel that heard the raise (PagerDuty, Opsgenie, chat) hears of it.
    """


@command.command(
    "list",
    epilog="""\b
Examples:
  eventbus alerts list --team team-1
  eventbus alerts list --status resolved --json

Firing first, then acknowledged, then resolved; AGE is how long ago the
alert was raised, COUNT how many events it folded in.""",
)
@click.option("--team", default=None, help="Only this team's alerts.")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only these.")
@click.option("--limit", type=click.IntRange(1, 10000), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines (times as RFC 3339).")
@click.pass_obj
def list_(ctx: Context, team: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """Show alerts, firing first."""

    async def read(stores: _Stores) -> list[Alert]:
        return await listing(
            stores.alerts,
            teams=None if team is None else [team],
            status=None if status is None else AlertStatus(status),
            limit=limit,
        )

    alerts = _with_stores(ctx, read)
    if as_json:
        for alert in alerts:
            sys.stdout.write(json.dumps(_json(alert)) + "\n")
        return
    now = time.time()
    rows = [
        {
            **alert.to_dict(),
            "age": age(now - alert.first_seen),
            "summary": " ".join(alert.summary.split())[:60],
        }
        for alert in alerts
    ]
    print_table(
        rows,
        [
            ("status", "status"),
            ("age", "age"),
            ("count", "count"),
            ("severity", "severity"),
            ("team_id", "team"),
            ("key", "key"),
            ("summary", "summary"),
        ],
    )


@command.command(
    "show",
    epilog="""\b
Examples:
  eventbus alerts show backup-failed:host-1 --team team-1

Prints the alert, the newest events folded into it and, under each event,
its delivery records (the notifications sent, or why none was). --json
prints one JSON object with "alert", "events" and "deliveries".""",
)
@click.argument("key")
@click.option("--team", required=True, help="The alert's team.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def show(ctx: Context, key: str, team: str, as_json: bool) -> None:
    """One alert with its events and their notifications."""

    async def read(stores: _Stores) -> tuple[Alert | None, list[str], list[DeliveryRecord]]:
        alert = await stores.alerts.get(team, key)
        if alert is None:
            return None, [], []
        events = await stores.alerts.events(alert, limit=_EVENTS_SHOWN)
        records: list[DeliveryRecord] = []
        for event_id in events:
            records += await stores.deliveries.query(event_id=event_id, limit=100)
        return alert, events, records

    alert, events, records = _with_stores(ctx, read)
    if alert is None:
        fail(f"team {team!r} has no alert with key {key!r} (see `eventbus alerts list`)")
    if as_json:
        payload = {
            "alert": _json(alert),
            "events": events,
            "deliveries": [_record_json(r) for r in records],
        }
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    _print_alert(alert)
    _print_events(events, records)


def _record_json(record: DeliveryRecord) -> dict[str, Any]:
    data = record.to_dict()
    data.pop("history", None)
    for name in ("created_at", "updated_at", "next_attempt_at"):
        data[name] = rfc3339(data[name])
    return data


def _print_alert(alert: Alert) -> None:
    lines = [
        ("alert", f"{alert.key} (team {alert.team_id}, id {alert.id})"),
        ("status", alert.status.value),
        ("severity", alert.severity),
        ("summary", alert.summary),
        ("event", f"{alert.event_type} on {alert.resource_type}:{alert.resource_id}"),
        ("first seen", f"{rfc3339(alert.first_seen)} ({age(time.time() - alert.first_seen)} ago)"),
        ("last seen", rfc3339(alert.last_seen)),
        ("count", str(alert.count)),
    ]
    if alert.acknowledged_at is not None:
        lines.append(
            ("acknowledged", f"{rfc3339(alert.acknowledged_at)} by {alert.acknowledged_by}")
        )
    if alert.resolved_at is not None:
        reason = f" ({alert.resolve_reason})" if alert.resolve_reason else ""
        lines.append(("resolved", f"{rfc3339(alert.resolved_at)}{reason}"))
    for label, value in lines:
        click.echo(f"{label + ':':<14}{value or ''}")


def _print_events(events: list[str], records: list[DeliveryRecord]) -> None:
    click.echo(f"\nevents (newest first, at most {_EVENTS_SHOWN}):")
    if not events:
        click.echo("  (none recorded)")
    for event_id in events:
        click.echo(f"  {event_id}")
        mine = [r for r in records if r.event_id == event_id]
        if not mine:
            click.echo("    no notifications recorded")
        for record in mine:
            why = record.reason or record.last_error or ""
            click.echo(
                f"    {record.status.value:<10} {record.channel} ({record.channel_type}) "
                f"via {record.subscription}{': ' + why if why else ''}"
            )


def _act(
    ctx: Context, action: AlertAction, key: str, team: str, by: str, comment: str | None
) -> None:
    async def run(stores: _Stores) -> Any:
        try:
            return await operate(
                stores.alerts,
                stores.publisher,
                team=team,
                key=key,
                action=action,
                by=by,
                via="cli",
                comment=comment,
            )
        except ActionError as exc:
            return exc

    done = _with_stores(ctx, run)
    if isinstance(done, ActionError):
        fail(str(done))
    click.echo(done.event.id)
    click.echo(
        f"published {action.value} of alert {key!r} (team {team}) as {done.event.event} "
        f"(stream id {done.stream_id}); the worker applies it and notifies its channels",
        err=True,
    )


@command.command(
    "ack",
    epilog="""\b
Examples:
  eventbus alerts ack backup-failed:host-1 --team team-1 --by alice

The alert stays open but quiet (no repeats). Prints the id of the event
published; refused when the alert does not exist or is resolved.""",
)
@click.argument("key")
@click.option("--team", required=True, help="The alert's team.")
@click.option("--by", "by", required=True, help="Who acknowledges it (the event's actor).")
@click.option("--comment", default=None, help="Why, or what is being done.")
@click.pass_obj
def ack(ctx: Context, key: str, team: str, by: str, comment: str | None) -> None:
    """Acknowledge an open alert."""
    _act(ctx, AlertAction.ACKNOWLEDGE, key, team, by, comment)


@command.command(
    "resolve",
    epilog="""\b
Examples:
  eventbus alerts resolve backup-failed:host-1 --team team-1 --comment "disk replaced"

Closes the alert (a later failure raises a new one) and sends the resolve
notices. --by names who resolved it (default: the user running the command).""",
)
@click.argument("key")
@click.option("--team", required=True, help="The alert's team.")
@click.option("--comment", default=None, help="Why it is resolved (in the resolve notice).")
@click.option("--by", "by", default=None, help="Who resolves it (default: user@host).")
@click.pass_obj
def resolve(ctx: Context, key: str, team: str, comment: str | None, by: str | None) -> None:
    """Resolve an open alert."""
    _act(ctx, AlertAction.RESOLVE, key, team, by or _author(), comment)


def _author() -> str:
    """user@host, as `eventbus silence add` names its author."""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        user = "cli"
    return f"{user}@{socket.gethostname()}"
