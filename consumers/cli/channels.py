"""``eventbus channels``: list configured channels and send test notifications."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
import httpx

from eventbus.brokers.redis_streams import connect
from eventbus.cli import EXIT_FAILED, EXIT_USAGE, Context, fail, run_async
from eventbus.keys import Keys
from eventbus.settings import ChannelSpec, Settings

from ..breaker import breaker_rules
from ..channel_switch import DEFAULT_REASON, disable_channel, enable_channel
from ..channels import ChannelDeps, build_channel
from ..console.propagation import merge
from ..console.store import ConsoleStore
from ..store import BreakerStore, Circuit
from ..store.partitioned import delivery_store
from ..testsend import send_test
from .common import checked_settings
from .deliveries import print_table

__all__ = ["command"]


@click.group("channels")
def command() -> None:
    """Configured delivery channels."""


@command.command(
    "list",
    epilog="""\b
Examples:
  eventbus --config /etc/eventbus/eventbus.yaml channels list
  eventbus channels list --json""",
)
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@click.pass_obj
def list_(ctx: Context, as_json: bool) -> None:
    """Channels with type, redacted target, rate limit, state and last outcome."""
    settings = checked_settings(ctx)
    rows = run_async(lambda: _channel_rows(settings))
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    print_table(
        rows,
        [
            ("name", "name"),
            ("source", "source"),
            ("type", "type"),
            ("target", "target"),
            ("rate_limit", "rate limit"),
            ("state", "state"),
            ("circuit", "circuit"),
            ("failure_ratio", "failures"),
            ("last_outcome", "last outcome"),
            ("last_error", "last error"),
        ],
    )


@command.command(
    "test",
    epilog="""\b
Examples:
  eventbus --config /etc/eventbus/eventbus.yaml channels test ops-chat

Sends one clearly marked test notification through the channel and records
it like any delivery (subscription "channel-test"). Exit status 1 on failure.""",
)
@click.argument("name")
@click.pass_obj
def test(ctx: Context, name: str) -> None:
    """Send a test notification through one configured channel."""
    settings = checked_settings(ctx)
    spec = settings.channel(name)
    if spec is None:
        known = ", ".join(c.name for c in settings.channels) or "none configured"
        fail(f"no channel named {name!r} (known: {known})", EXIT_USAGE)

    result = run_async(lambda: send_test(settings, name))
    status = f" HTTP {result.status}" if result.status is not None else ""
    line = f"{name}: {result.outcome.value}{status} in {result.latency * 1000:.0f} ms"
    if result.ok:
        click.secho(line, fg="green")
        return
    click.secho(f"{line}: {result.error or 'no detail'}", fg="red")
    sys.exit(EXIT_FAILED)


@command.command(
    "enable",
    epilog="""\b
Examples:
  eventbus channels enable ops-hook

A channel is disabled when its target answers 410 Gone, when it failed for
breaker.disable_after (5 days), or by 'channels disable'. Fix the target
first, then enable it: its circuit breaker starts closed. Deliveries skipped
meanwhile can be found with 'eventbus deliveries --status skipped --channel NAME'.""",
)
@click.argument("name")
@click.pass_obj
def enable(ctx: Context, name: str) -> None:
    """Clear a channel's disabled state."""
    settings = ctx.settings()
    if settings.channel(name) is None:
        fail(f"no channel named {name!r} in the configuration", EXIT_USAGE)

    async def enable_and_tell_if_it_was_disabled() -> bool:
        redis = connect(settings.broker.redis_url.get_secret_value())
        try:
            return await enable_channel(redis, Keys(settings.broker.prefix), name)
        finally:
            await redis.aclose()

    if run_async(enable_and_tell_if_it_was_disabled):
        click.echo(f"{name}: enabled (workers pick this up within 10 s)")
    else:
        click.echo(f"{name}: was not disabled")


@command.command(
    "disable",
    epilog="""\b
Examples:
  eventbus channels disable ops-hook --reason "receiver under maintenance"

Deliveries to a disabled channel are recorded as skipped, not sent;
'eventbus channels enable NAME' sends again.""",
)
@click.argument("name")
@click.option("--reason", default=DEFAULT_REASON, show_default=True)
@click.pass_obj
def disable(ctx: Context, name: str, reason: str) -> None:
    """Stop delivering to a channel until it is enabled again."""
    settings = ctx.settings()
    if settings.channel(name) is None:
        fail(f"no channel named {name!r} in the configuration", EXIT_USAGE)

    async def disable_it() -> None:
        redis = connect(settings.broker.redis_url.get_secret_value())
        try:
            await disable_channel(redis, Keys(settings.broker.prefix), name, reason)
        finally:
            await redis.aclose()

    run_async(disable_it)
    click.echo(f"{name}: disabled (workers pick this up within 10 s)")


async def _all_channels(
    redis: Any, keys: Keys, settings: Settings
) -> list[tuple[ChannelSpec, str]]:
    """The YAML's channels, then those added through the console API (``source``)."""
    snapshot = await ConsoleStore(redis, keys, settings.security).snapshot()
    merged, _problems = merge(settings, snapshot)  # the worker logs the problems
    from_config = {spec.name for spec in settings.channels}
    return [(spec, "config" if spec.name in from_config else "api") for spec in merged.channels]


async def _channel_rows(settings: Settings) -> list[dict[str, Any]]:
    redis = connect(settings.broker.redis_url.get_secret_value())
    async with httpx.AsyncClient() as http:
        deps = ChannelDeps(http=http, security=settings.security)
        try:
            store = delivery_store(
                redis, Keys(settings.broker.prefix), partitions=settings.broker.partitions
            )
            states = await store.channel_states()
            windows = {name: rule.window for name, rule in breaker_rules(settings).items()}
            circuits = await BreakerStore(redis, store.keys).read(windows, time.time())
            specs = await _all_channels(redis, store.keys, settings)
            latest = await store.latest_per_channel([spec.name for spec, _ in specs])
            rows = []
            for spec, source in specs:
                state = states.get(spec.name)
                record = latest.get(spec.name)
                last = [record] if record is not None else []
                circuit = circuits.get(spec.name) or Circuit()
                ratio = circuit.failure_ratio
                limit = spec.rate_limit
                rows.append(
                    {
                        "name": spec.name,
                        "source": source,
                        "type": spec.kind,
                        "target": build_channel(spec, deps).describe(),
                        "rate_limit": f"{limit.rate:g}/{limit.per:g}s" if limit else "default",
                        "state": "disabled (config)"
                        if not spec.enabled
                        else f"disabled: {state.reason}"
                        if state and state.disabled
                        else "enabled",
                        "circuit": circuit.state.value,
                        "failure_ratio": "" if ratio is None else f"{ratio:.0%}",
                        "last_outcome": last[0].status.value if last else "",
                        "last_error": circuit.last_error
                        or ((last[0].last_error or "") if last else ""),
                    }
                )
            return rows
        finally:
            await redis.aclose()


# API-defined channels, changed in the console store: add, update, remove.
from .console_edit import add_channel_commands  # noqa: E402 (kept apart from list/test)

add_channel_commands(command)
