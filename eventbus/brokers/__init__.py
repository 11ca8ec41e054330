"""Broker backends behind one ``Broker`` protocol (``base``).

Redis Streams is the default; RabbitMQ (``eventbus.brokers.rabbitmq``) needs
the ``rabbitmq`` extra, so it is imported from its module, not from here.
"""

from ..errors import ConfigError
from .base import Broker, DeadLetter, Received
from .redis_streams import RedisStreams, StreamEntry, connect

__all__ = [
    "Broker",
    "DeadLetter",
    "Received",
    "RedisStreams",
    "StreamEntry",
    "connect",
    "streams_only",
]


def streams_only(kind: str, what: str) -> None:
    """Refuse ``broker.kind: rabbitmq`` for ``what``, which runs on Redis Streams only so far.

    Without this, the worker or publisher would quietly use the Redis stream
    while the operator believes events go through RabbitMQ.
    """
    if kind != "redis":
        raise ConfigError(
            f"broker.kind is {kind!r}, but {what} runs on Redis Streams only in this "
            "version (RabbitMQ mode covers 'eventbus broker setup' and 'eventbus dlq' so "
            "far): set broker.kind: redis (EVENTBUS_BROKER__KIND=redis)"
        )
