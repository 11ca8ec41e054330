"""``eventbus config check``: validate the YAML and show what it would do."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import click
import httpx
import yaml

from eventbus.catalog import Kind
from eventbus.cli import Context
from eventbus.durations import format_duration
from eventbus.keys import Keys
from eventbus.settings import ChannelSpec, Settings, SubscriptionSpec
from eventbus.subscriptions import Matcher

from ..channels import ChannelDeps, build_channel
from ..channels.registry import channel_warnings, type_name
from ..routing.merging import overlaps
from .common import checked_settings

__all__ = ["command", "routing_lines"]

_MAX_OVERLAPS = 20


@click.group("config")
def command() -> None:
    """Work with the configuration file."""


@command.command(
    "check",
    epilog="""\b
Examples:
  eventbus --config config/eventbus.example.yaml config check
  EVENTBUS_CONFIG=/etc/eventbus/eventbus.yaml eventbus config check

Exit status: 0 when the configuration is valid, 2 with every problem listed.""",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML file (overrides the global --config).",
)
@click.pass_obj
def check(ctx: Context, config_path: str | None) -> None:
    """Validate the configuration and print a redacted summary."""
    if config_path:
        ctx.config_path = config_path
    settings = checked_settings(ctx)
    _summary(settings, ctx.config_path)


def _summary(settings: Settings, path: str | None) -> None:
    deps = ChannelDeps(http=httpx.AsyncClient(), security=settings.security)
    click.secho(f"configuration OK ({path or 'environment and defaults only'})", fg="green")
    click.echo(_broker_line(settings))
    click.echo(
        f"http: {settings.http.host}:{settings.http.port}"
        f"{'' if settings.http.enabled else ' (disabled)'}  tokens={len(settings.http.tokens)}"
    )
    click.echo(f"\nchannels ({len(settings.channels)}):")
    for spec in settings.channels:
        target = build_channel(spec, deps).describe()
        state = "" if spec.enabled else "  [disabled]"
        click.echo(f"  {spec.name:<20} {type_name(spec):<10} {target}{state}")
        for warning in _channel_warnings(spec):
            click.secho(f"    warning: {warning}", fg="yellow")
    _subscriptions(settings)
    _overlaps(settings)


def _broker_line(settings: Settings) -> str:
    broker, group = settings.broker, settings.consumer.group
    if broker.kind == "rabbitmq":
        return (
            f"broker: RabbitMQ {broker.amqp_url_redacted}  exchange={broker.prefix}.events  "
            f"queue={broker.prefix}.{group}  state in Redis {broker.redis_url_redacted}"
        )
    spread = f" (+{broker.partitions - 1} partitions)" if broker.partitions > 1 else ""
    return (
        f"broker: {broker.redis_url_redacted}  prefix={broker.prefix}  "
        f"stream={Keys(broker.prefix).events}{spread}  group={group}"
    )


def _subscriptions(settings: Settings) -> None:
    catalog = settings.catalog.build()
    durable = sorted(t for t, k in catalog.types.items() if k is not Kind.TRANSIENT)
    matcher = Matcher(settings.subscriptions, catalog)
    click.echo(f"\nsubscriptions ({len(settings.subscriptions)}):")
    for sub in settings.subscriptions:
        outcomes = ",".join(sub.outcomes) if sub.outcomes else "any"
        click.echo(
            f"  {sub.name:<20} team={sub.team} outcomes={outcomes} -> "
            f"{', '.join(sub.channels)}{'' if sub.enabled else '  [disabled]'}"
        )
        receives = matcher.types_for(sub, durable)
        click.echo(f"    receives: {', '.join(receives) if receives else '(no catalog type)'}")
        extra = [p for p in sub.events if "*" in p or "?" in p]
        if extra:
            click.echo(f"    and any other type matching: {', '.join(extra)}")
        for line in routing_lines(sub):
            click.echo(f"    {line}")


def routing_lines(sub: SubscriptionSpec) -> list[str]:
    """The routing keys a subscription sets, named as in the YAML (defaults left out)."""
    lines = []
    if sub.min_severity is not None:
        lines.append(f"min_severity: {sub.min_severity}")
    if sub.severities is not None:
        lines.append(f"severities: {_flow(sub.severities)}")
    if sub.where:
        lines.append("where:")
        lines += [f"  {path}: {_flow(matcher)}" for path, matcher in sub.where.items()]
    if sub.cooldown is not None:
        lines.append(
            f"cooldown: {format_duration(sub.cooldown)}  cooldown_key: {_flow(sub.cooldown_key)}"
        )
    if sub.group_by is not None:
        lines.append(
            f"group_by: {_flow(sub.group_by)}  group_wait: {format_duration(sub.group_wait)}  "
            f"group_interval: {format_duration(sub.group_interval)}  "
            f"digest_max_events: {sub.digest_max_events}"
        )
    return lines


def _flow(value: Any) -> str:
    """``value`` as YAML flow style, on one line: ``[eu-west, eu-north]``, ``{glob: db-*}``."""
    if isinstance(value, list):
        value = [str(item) if isinstance(item, StrEnum) else item for item in value]
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _overlaps(settings: Settings) -> None:
    found = overlaps(settings.subscriptions)
    if not found:
        return
    click.echo("\none delivery per channel (subscriptions that can match one event):")
    for overlap in found[:_MAX_OVERLAPS]:
        maybe = " (if their where filters both hold)" if overlap.filtered else ""
        click.echo(
            f"  {overlap.channel}: {overlap.delivers} delivers, {overlap.merged} records "
            f"merged{maybe}"
        )
    if len(found) > _MAX_OVERLAPS:
        click.echo(f"  ... and {len(found) - _MAX_OVERLAPS} more")


def _channel_warnings(spec: ChannelSpec) -> list[str]:
    """Advice for risky but valid setups, from the channel type's table entry."""
    return channel_warnings(spec)
