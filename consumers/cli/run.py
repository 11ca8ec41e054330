"""``eventbus run``: one consumer worker (plus its HTTP server)."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from eventbus.brokers.embedded import EmbeddedRedis, redis_answers
from eventbus.cli import EXIT_BROKER, EXIT_CONFIG, Context, config_failure, fail, missing_extra
from eventbus.errors import BrokerUnavailable, ConfigError
from eventbus.logs import configure_logging, set_log_redactor
from eventbus.secrets import configured_secrets
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
   EVENTBUS_BROKER__REDIS_URL={url} {eventbus} publish \\
       --type capsule.create --outcome success --team team-1 \\
       --resource capsule:c1 --actor user:u1
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
    help="Use the embedded broker when no broker.redis_url is configured and no Redis "
    "answers at the default address.",
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
    if settings.broker.kind == "rabbitmq":
        if embedded:
            fail(
                "--embedded starts a Redis-protocol broker, but broker.kind is 'rabbitmq': "
                "drop --embedded, or set broker.kind: redis (EVENTBUS_BROKER__KIND=redis)",
                EXIT_CONFIG,
            )
        try:
            import aio_pika  # noqa: F401
        except ModuleNotFoundError as exc:
            missing_extra("rabbitmq", exc, "eventbus run with broker.kind: rabbitmq")
    configure_logging(settings.logging)
    set_log_redactor(configured_secrets(settings).mask)
    if embedded_fallback and not embedded:
        embedded = not _redis_answers(settings)
    broker = None
    if embedded:
        broker, url = _start_embedded(embedded_port)
        click.secho(
            _BANNER.format(url=url, eventbus=_this_command()), fg="yellow", bold=True, err=True
        )
        ctx.overrides["broker"] = {**settings.broker.model_dump(), "redis_url": url}
        settings = ctx.reload_settings()

    daemon = Daemon(settings, config_path=ctx.config_path, overrides=ctx.overrides)
    try:
        asyncio.run(daemon.run())
    except BrokerUnavailable as exc:
        click.secho(
            f"error: {exc}\n  is {_which(settings)} running? check {_broker_settings(settings)}",
            fg="red",
            err=True,
        )
        sys.exit(EXIT_BROKER)
    except ConfigError as exc:  # e.g. the HTTP port is taken
        config_failure(exc)
    except asyncio.CancelledError:
        sys.exit(130)
    finally:
        if broker is not None:
            broker.stop()


def _start_embedded(port: int) -> tuple[EmbeddedRedis, str]:
    """The embedded broker on ``port``; the default taken, on any free port instead."""
    chosen = click.get_current_context().get_parameter_source("embedded_port")
    broker = EmbeddedRedis(port=port)
    try:
        return broker, broker.start()
    except ModuleNotFoundError as exc:
        missing_extra("embedded", exc, "the embedded broker")
    except OSError as exc:
        if chosen is not click.core.ParameterSource.DEFAULT:
            fail(
                f"the embedded broker cannot listen on 127.0.0.1:{port} ({exc.strerror}): "
                "pass another --embedded-port, or 0 for any free port",
                EXIT_CONFIG,
            )
    click.secho(f"port {port} is taken; the embedded broker takes a free one", err=True)
    broker = EmbeddedRedis(port=0)
    return broker, broker.start()


def _redis_answers(settings: Settings) -> bool:
    """Whether a Redis answers at broker.redis_url (saying so when none does).

    Only the default address may fall back: a URL the operator configured
    that does not answer is an error (a typo must not silently switch to a
    broker that keeps nothing).
    """
    parts = urlsplit(settings.broker.redis_url.get_secret_value())
    if redis_answers(parts.hostname or "127.0.0.1", parts.port or 6379):
        return True
    if "redis_url" in settings.broker.model_fields_set:
        fail(
            f"no Redis answers at {settings.broker.redis_url_redacted}, the configured "
            "broker.redis_url: start it or fix the URL (the embedded broker is used only "
            "when no URL is configured)",
            EXIT_BROKER,
        )
    click.secho(
        f"no Redis answers at {settings.broker.redis_url_redacted}; "
        "falling back to the embedded broker",
        fg="yellow",
        err=True,
    )
    return False


def _this_command() -> str:
    """How to run this same ``eventbus`` from another shell (no virtualenv activated)."""
    script = Path(sys.argv[0])
    if script.name != "eventbus" or not script.is_file():
        return f"{shlex.quote(sys.executable)} -m eventbus"
    path, here = script.resolve(), Path.cwd()
    return shlex.quote(f"./{path.relative_to(here)}" if path.is_relative_to(here) else str(path))


def _which(settings: Settings) -> str:
    return "RabbitMQ (and Redis)" if settings.broker.kind == "rabbitmq" else "Redis"


def _broker_settings(settings: Settings) -> str:
    if settings.broker.kind == "rabbitmq":
        return "broker.amqp_url / EVENTBUS_BROKER__AMQP_URL and broker.redis_url"
    return "broker.redis_url / EVENTBUS_BROKER__REDIS_URL, or try --embedded"
