"""``eventbus broker setup``: declare what the broker needs, once, as an administrator.

Workers and publishers declare the same topology at start; this command is
for vhosts (or Redis ACLs) where the application's user may not create
exchanges, queues or consumer groups. Running it again changes nothing.
"""

from __future__ import annotations

import click

from ..brokers.redis_streams import RedisStreams, connect
from ..errors import BrokerUnavailable
from ..keys import Keys
from ..settings import Settings
from .common import EXIT_BROKER, Context, fail, missing_extra, run_async

__all__ = ["command"]


@click.group("broker")
def command() -> None:
    """The broker behind eventbus (broker.kind: redis or rabbitmq)."""


@command.command(
    "setup",
    epilog="""\b
Examples:
  eventbus broker setup
  EVENTBUS_BROKER__KIND=rabbitmq eventbus broker setup --group delivery --group audit

On RabbitMQ it declares the exchanges <prefix>.events, <prefix>.live and
<prefix>.dlq, the dead-letter queue, and a quorum queue <prefix>.<group> per
group (x-delivery-limit = consumer.max_receives). On Redis it creates the
stream and each consumer group. What exists already is left as it is.""",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="NAME",
    help="Consumer group to declare (repeatable; default: consumer.group).",
)
@click.pass_obj
def setup(ctx: Context, groups: tuple[str, ...]) -> None:
    """Declare the topology of broker.prefix; safe to repeat."""
    settings = ctx.settings()
    names = list(dict.fromkeys(groups or (settings.consumer.group,)))
    if settings.broker.kind == "rabbitmq":
        done = _rabbitmq(settings, names)
    else:
        done = run_async(lambda: _redis(settings, names))
    for line in done:
        click.echo(line)


async def _redis(settings: Settings, groups: list[str]) -> list[str]:
    keys = Keys(settings.broker.prefix)
    redis = connect(settings.broker.redis_url.get_secret_value())
    try:
        streams = RedisStreams(redis, keys, partitions=settings.broker.partitions)
        await streams.check_partitions()
        for group in groups:
            await streams.ensure_group(group)
    finally:
        await redis.aclose()
    where = settings.broker.redis_url_redacted
    return [
        f"redis {where}: stream {part.events}, group {group}"
        for group in groups
        for part in keys.partitions(settings.broker.partitions)
    ]


def _rabbitmq(settings: Settings, groups: list[str]) -> list[str]:
    try:
        from ..brokers.rabbitmq import RabbitMQ
    except ModuleNotFoundError as exc:
        missing_extra("rabbitmq", exc, "eventbus broker setup with broker.kind: rabbitmq")

    async def declare() -> list[str] | str:
        broker = RabbitMQ.from_settings(settings)
        try:
            async with broker:
                for group in groups:
                    await broker.ensure_group(group)
        except BrokerUnavailable as exc:
            return str(exc)  # run_async's hint names broker.redis_url
        names, where = broker.topology, broker.url_redacted
        lines = [f"rabbitmq {where}: exchange {name}" for name in (names.events, names.live)]
        lines.append(f"rabbitmq {where}: exchange and queue {names.dlq} (dead letters)")
        lines += [
            f"rabbitmq {where}: quorum queue {names.queue(group)} "
            f"(x-delivery-limit {broker.max_receives})"
            for group in groups
        ]
        return lines

    done = run_async(declare)
    if isinstance(done, str):
        fail(f"{done}\n  check broker.amqp_url / EVENTBUS_BROKER__AMQP_URL", EXIT_BROKER)
    return done
