"""``eventbus config check``: validate the YAML and show what it would do."""

from __future__ import annotations

import click
import httpx

from eventbus.catalog import Kind
from eventbus.cli import Context
from eventbus.settings import ChannelSpec, Settings
from eventbus.subscriptions import Matcher

from ..channels import ChannelDeps, build_channel
from ..channels.registry import channel_warnings
from .common import checked_settings

__all__ = ["command"]


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
    broker = settings.broker
    click.echo(
        f"broker: {broker.redis_url_redacted}  prefix={broker.prefix}  "
        f"stream={broker.prefix}:events  group={settings.consumer.group}"
    )
    click.echo(
        f"http: {settings.http.host}:{settings.http.port}"
        f"{'' if settings.http.enabled else ' (disabled)'}  tokens={len(settings.http.tokens)}"
    )
    click.echo(f"\nchannels ({len(settings.channels)}):")
    for spec in settings.channels:
        target = build_channel(spec, deps).describe()
        state = "" if spec.enabled else "  [disabled]"
        click.echo(f"  {spec.name:<20} {spec.kind:<10} {target}{state}")
        for warning in _channel_warnings(spec):
            click.secho(f"    warning: {warning}", fg="yellow")
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


def _channel_warnings(spec: ChannelSpec) -> list[str]:
    """Advice for risky but valid setups, from the channel type's table entry."""
    return channel_warnings(spec)
