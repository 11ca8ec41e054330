"""Broker backends behind one ``Broker`` protocol (``base``).

Redis Streams is the default; RabbitMQ (``eventbus.brokers.rabbitmq``) needs
the ``rabbitmq`` extra, so it is imported from its module, not from here.
"""

from .base import Broker, DeadLetter, Received
from .redis_streams import RedisStreams, StreamEntry, connect

__all__ = [
    "Broker",
    "DeadLetter",
    "Received",
    "RedisStreams",
    "StreamEntry",
    "connect",
]
