"""``eventbus serve``: the HTTP side alone, for a dashboard-only process.

It serves the SSE live feed, the dashboard, ``/healthz``, ``/readyz`` and
``/metrics`` without consuming the stream, so it can run next to workers (or
on another machine) and be scaled or restarted on its own. ``eventbus run``
serves the same endpoints from inside each worker.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import click

from eventbus.brokers.redis_streams import connect, translated
from eventbus.cli import EXIT_BROKER, EXIT_CONFIG, Context, fail, missing_extra
from eventbus.errors import BrokerUnavailable, ConfigError, EventBusError
from eventbus.logs import configure_logging, set_log_redactor
from eventbus.secrets import configured_secrets
from eventbus.settings import Settings

from ..health import Health
from ..metrics import Metrics
from ..server import HttpServer

if TYPE_CHECKING:
    from eventbus.brokers.rabbitmq import RabbitMQ

__all__ = ["command"]


@click.command(
    "serve",
    epilog="""\b
Examples:
  eventbus --config /etc/eventbus/eventbus.yaml serve
  eventbus serve --host 0.0.0.0 --port 8080
  curl -N -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/events/stream

\b
Endpoints: / (dashboard), /v1/events/stream (SSE), /v1/deliveries,
/healthz, /readyz, /metrics. Tokens come from http.tokens.
Signals: SIGTERM/SIGINT close the streams and exit 0.
Exit status: 0 clean stop, 2 bad configuration or address, 3 broker unreachable.""",
)
@click.option("--host", help="Listen address (default: http.host, 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Listen port (default: http.port; 0 picks a free port).",
)
@click.pass_obj
def command(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve only the HTTP side: live feed (SSE), dashboard, health and metrics."""
    settings = ctx.settings()
    configure_logging(settings.logging)
    set_log_redactor(configured_secrets(settings).mask)
    try:
        asyncio.run(_serve(settings, host, port))
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except BrokerUnavailable as exc:
        fail(f"{exc}\n  check {_broker_settings(settings)}", EXIT_BROKER)
    except EventBusError as exc:
        fail(str(exc))


async def _serve(settings: Settings, host: str | None, port: int | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        broker = settings.broker
        live = await _rabbitmq(settings, stack)
        redis = connect(broker.redis_url.get_secret_value(), socket_timeout=broker.socket_timeout)
        stack.push_async_callback(redis.aclose)
        async with translated("connect"):
            await redis.ping()
        # Before the server starts: a signal while it starts must stop it cleanly too.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
            stack.callback(loop.remove_signal_handler, sig)
        health = Health()
        server = HttpServer(
            settings, redis=redis, health=health, metrics=Metrics(), host=host, port=port, live=live
        )
        await server.start()
        stack.push_async_callback(server.stop)
        health.set_ready(None)
        click.echo(
            f"serving {server.url}/ (dashboard) and {server.url}/v1/events/stream (SSE); "
            "Ctrl-C to stop",
            err=True,
        )
        await stop.wait()
        click.echo("stopping", err=True)


async def _rabbitmq(settings: Settings, stack: AsyncExitStack) -> RabbitMQ | None:
    """In RabbitMQ mode the live feed comes from ``<prefix>.live`` (no replay)."""
    if settings.broker.kind != "rabbitmq":
        return None
    try:
        from eventbus.brokers.rabbitmq import RabbitMQ
    except ModuleNotFoundError as exc:
        missing_extra("rabbitmq", exc, "eventbus serve with broker.kind: rabbitmq")
    return await stack.enter_async_context(RabbitMQ.from_settings(settings, consuming=False))


def _broker_settings(settings: Settings) -> str:
    if settings.broker.kind == "rabbitmq":
        return "broker.amqp_url / EVENTBUS_BROKER__AMQP_URL and broker.redis_url"
    return "broker.redis_url / EVENTBUS_BROKER__REDIS_URL"
