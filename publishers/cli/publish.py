"""``eventbus publish``: one event from flags, or many from a JSONL file."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import click

from eventbus.cli import EXIT_FAILED, EXIT_USAGE, Context, fail, run_async
from eventbus.envelope import AlertAction, Event, Severity, parse_event
from eventbus.errors import BrokerError, CatalogError, EnvelopeError
from eventbus.settings import Settings

from ..client import Publisher

__all__ = ["command"]

_BATCH = 500


def _pair(value: str, option: str, example: str) -> tuple[str, str]:
    kind, sep, ident = value.partition(":")
    if not sep or not kind or not ident:
        raise click.BadParameter(f"{value!r} is not TYPE:ID, e.g. {example}", param_hint=option)
    return kind, ident


@click.command(
    "publish",
    epilog="""\b
Examples:
  eventbus publish --type capsule.create --outcome success --team team-1 \\
      --resource capsule:c1 --actor user:u1 --meta region=eu-west
  eventbus publish --type capsule.create --outcome error --error "quota exceeded" \\
      --team team-1 --resource capsule:c2
  eventbus publish --type host.down --severity critical --team team-1 --resource host:db1
  eventbus publish --type backup.run --outcome error --error "disk full" --team team-1 \\
      --resource host:h1 --alert-key backup-failed:h1     # raises (or touches) the alert
  eventbus publish --type backup.run --outcome success --team team-1 --resource host:h1 \\
      --alert-key backup-failed:h1                         # resolves it
  eventbus publish --type capsule.state.changed --team team-1 --resource capsule:c1 --transient
  eventbus publish --file events.jsonl      # one JSON envelope per line""",
)
@click.option("--type", "event_type", help="Dotted event type, e.g. capsule.create.")
@click.option("--outcome", type=click.Choice(["success", "error"]), help="Outcome, if any.")
@click.option("--team", help="Team (tenant) id.")
@click.option("--resource", help="Resource as TYPE:ID, e.g. capsule:c1.")
@click.option("--actor", help="Actor as TYPE:ID (user, api_key, system); default system.")
@click.option("--meta", multiple=True, help="Metadata KEY=VALUE (repeatable).")
@click.option("--error", "error_text", help="Error text (only with --outcome error).")
@click.option(
    "--severity",
    type=click.Choice([level.value for level in Severity], case_sensitive=False),
    help="debug < info < warning < error < critical; default: error with --outcome error, "
    "else info.",
)
@click.option(
    "--alert-key",
    help="Make the event part of this alert (dedupe key within the team, e.g. backup-failed:h1).",
)
@click.option(
    "--alert-action",
    type=click.Choice([action.value for action in AlertAction], case_sensitive=False),
    help="What the event does to its alert; default: resolve with --outcome success, "
    "else trigger. Needs --alert-key.",
)
@click.option("--transient", is_flag=True, help="Live mirror only; never stored or delivered.")
@click.option(
    "--file",
    "file_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Publish every line of a JSONL file ('-' = stdin); other event flags are ignored.",
)
@click.pass_obj
def command(
    ctx: Context,
    event_type: str | None,
    outcome: str | None,
    team: str | None,
    resource: str | None,
    actor: str | None,
    meta: tuple[str, ...],
    error_text: str | None,
    severity: str | None,
    alert_key: str | None,
    alert_action: str | None,
    transient: bool,
    file_path: str | None,
) -> None:
    """Publish events durably (stream + live mirror) or, with --transient, live only."""
    settings = ctx.settings()
    if file_path is not None:
        sys.exit(_publish_path(settings, file_path, transient))
    missing = [
        n for n, v in (("--type", event_type), ("--team", team), ("--resource", resource)) if not v
    ]
    if missing:
        fail(f"missing {', '.join(missing)} (or use --file)", EXIT_USAGE)
    data: dict[str, Any] = {"event": event_type, "team_id": team}
    rtype, rid = _pair(resource or "", "--resource", "capsule:c1")
    data["resource"] = {"type": rtype, "id": rid}
    if actor:
        atype, aid = _pair(actor, "--actor", "user:u1")
        data["actor"] = {"type": atype, "id": aid}
    if outcome:
        data["outcome"] = outcome
    if error_text:
        data["error"] = error_text
    if severity:
        data["severity"] = severity.lower()
    if alert_key is not None or alert_action:
        data["alert"] = _alert(alert_key, alert_action, transient)
    data["metadata"] = _metadata(meta)
    try:
        event = parse_event(data, settings.envelope)
    except EnvelopeError as exc:
        fail(str(exc), EXIT_USAGE)

    async def publish_one() -> str | int:
        async with Publisher(settings) as bus:
            if transient:
                return await bus.publish_transient(event)
            return await bus.publish(event)

    result = run_async(publish_one)
    if transient:
        click.echo(f"event {event.id} published live only ({_listeners(int(result))})")
    else:
        rabbitmq = settings.broker.kind == "rabbitmq"
        where = "published to RabbitMQ" if rabbitmq else f"stream {result}"
        click.echo(f"event {event.id} {where}")


def _alert(key: str | None, action: str | None, transient: bool) -> dict[str, str]:
    if key is None:
        fail("--alert-action needs --alert-key (the alert it acts on)", EXIT_USAGE)
    if transient:
        fail("--alert-key needs a durable event: transient ones are never delivered", EXIT_USAGE)
    return {"key": key, "action": action.lower()} if action else {"key": key}


def _listeners(count: int) -> str:
    if count == 0:
        return "no dashboard or tail is listening"
    return "1 listener" if count == 1 else f"{count} listeners"


def _metadata(meta: tuple[str, ...]) -> dict[str, str]:
    metadata = {}
    for item in meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--meta")
        metadata[key] = value
    return metadata


def _publish_path(settings: Settings, file_path: str, transient: bool) -> int:
    total = None if file_path == "-" else _count_lines(file_path)
    try:
        stream = sys.stdin if file_path == "-" else open(file_path, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read {file_path}: {exc.strerror}", EXIT_USAGE)
    try:
        return run_async(lambda: _publish_file(settings, stream, total, transient))
    finally:
        if stream is not sys.stdin:
            stream.close()


def _parse_line(line: str, bus: Publisher, transient: bool) -> Event:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EnvelopeError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise EnvelopeError(f"not a JSON object but a JSON {type(data).__name__}")
    event = parse_event(data, bus.limits)
    if transient:
        bus.catalog.check_transient(event.event)
    else:
        bus.catalog.check_durable(event.event)
    return event


async def _publish_file(
    settings: Settings, stream: TextIO, total: int | None, transient: bool
) -> int:
    published = 0
    rejected: list[tuple[int, str]] = []
    batch: list[tuple[int, Event]] = []
    show = sys.stderr.isatty() and total is not None
    progress = (
        click.progressbar(length=total or 0, label="publishing", file=sys.stderr) if show else None
    )

    async def flush(bus: Publisher) -> None:
        nonlocal published
        if not batch:
            return
        try:
            if transient:
                for _, ev in batch:
                    await bus.publish_transient(ev)
            else:
                await bus.publish_many([ev for _, ev in batch])
            published += len(batch)
        except CatalogError as exc:  # checked per line below; kept for safety
            rejected.extend((n, str(exc)) for n, _ in batch)
        if progress is not None:
            progress.update(len(batch))
        batch.clear()

    try:
        async with Publisher(settings) as bus:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    batch.append((number, _parse_line(line, bus, transient)))
                except (EnvelopeError, CatalogError) as exc:
                    rejected.append((number, str(exc)))
                    if progress is not None:
                        progress.update(1)
                    continue
                if len(batch) >= _BATCH:
                    await flush(bus)
            await flush(bus)
    except BrokerError as exc:
        click.echo(f"published {published} before the broker failed", err=True)
        raise exc
    finally:
        if progress is not None:
            progress.render_finish()
    return _report(published, rejected)


def _report(published: int, rejected: list[tuple[int, str]]) -> int:
    click.echo(f"published {published}, rejected {len(rejected)}")
    for number, reason in rejected[:100]:
        click.echo(f"  line {number}: {reason}", err=True)
    if len(rejected) > 100:
        click.echo(f"  ... and {len(rejected) - 100} more", err=True)
    return EXIT_FAILED if rejected else 0


def _count_lines(path: str) -> int | None:
    try:
        with open(path, "rb") as lines:
            return sum(1 for line in lines if line.strip())
    except OSError:
        return None
