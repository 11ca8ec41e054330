"""``eventbus run``: one consumer worker (plus its HTTP server)."""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlsplit

import click

from eventbus.brokers.embedded import EmbeddedRedis, redis_answers
from eventbus.cli import EXIT_BROKER, Context, missing_extra
from eventbus.errors import BrokerUnavailable
from eventbus.logs import configure_logging
from eventbus.settings import Settings

from ..daemon import Daemon
from .common import checked_settings

__all__ = ["command"]

_BANNER = """\
==============================================================================
 EMBEDDED BROKER: an in-memory Redis-protocol server (fakeredis) for trying
 eventbus out. Nothing survives a restart. Do not use it in production.
   URL: {url}
 Publish from another terminal with:
   EVENTBUS_BROKER__REDIS_URL={url} eventbus publish --type capsule.create \\
       --outcome success --team team-1 --resource capsule:c1 --actor user:u1
=============================================================================="""


@click.command(
    "run",
    epilog="""\b
Examples:
  eventbus --config /etc/eventbus/eventbus.yaml run
  eventbus --config config/eventbus.example.yaml run --embedded
  EVENTBUS_CONSUMER__NAME=worker-1 eventbus run

\b
Signals: SIGTERM/SIGINT drain in-flight work (consumer.drain_timeout) and
exit 0; a second one exits at once. SIGHUP reloads channels and subscriptions.
Exit status: 0 clean stop, 2 bad configuration, 3 broker unreachable.""",
)
@click.option(
    "--embedded",
    is_flag=True,
    help="Start an in-memory development broker instead of using broker.redis_url.",
)
@click.option(
    "--embedded-fallback",
    is_flag=True,
    help="Use the embedded broker only when no Redis answers at broker.redis_url.",
)
@click.option(
    "--embedded-port",
    type=int,
    default=6390,
    show_default=True,
    help="Port of the embedded broker on 127.0.0.1 (0 = any free port).",
)
@click.pass_obj
def command(ctx: Context, embedded: bool, embedded_fallback: bool, embedded_port: int) -> None:
    """Run a consumer worker: read the stream, deliver, record, ack."""
    settings = checked_settings(ctx)
    configure_logging(settings.logging)
    if embedded_fallback and not embedded:
        embedded = not _redis_answers(settings)
    broker = None
    if embedded:
        broker = EmbeddedRedis(port=embedded_port)
        try:
            url = broker.start()
        except ModuleNotFoundError as exc:
            missing_extra("embedded", exc, "the embedded broker")
        click.secho(_BANNER.format(url=url), fg="yellow", bold=True, err=True)
        ctx.overrides["broker"] = {**settings.broker.model_dump(), "redis_url": url}
        settings = ctx.reload_settings()

    daemon = Daemon(settings, config_path=ctx.config_path, overrides=ctx.overrides)
    try:
        asyncio.run(daemon.run())
    except BrokerUnavailable as exc:
        click.secho(
            f"error: {exc}\n  is Redis running? check broker.redis_url / "
            "EVENTBUS_BROKER__REDIS_URL, or try --embedded",
            fg="red",
            err=True,
        )
        sys.exit(EXIT_BROKER)
    except asyncio.CancelledError:
        sys.exit(130)
    finally:
        if broker is not None:
            broker.stop()


def _redis_answers(settings: Settings) -> bool:
    """Whether a Redis answers at broker.redis_url (saying so when none does)."""
    parts = urlsplit(settings.broker.redis_url.get_secret_value())
    if redis_answers(parts.hostname or "127.0.0.1", parts.port or 6379):
        return True
    click.secho(
        f"no Redis answers at {settings.broker.redis_url_redacted}; "
        "falling back to the embedded broker",
        fg="yellow",
        err=True,
    )
    return False
