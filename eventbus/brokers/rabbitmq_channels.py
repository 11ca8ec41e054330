"""Channel-level helpers of the RabbitMQ backend: one consumer's state, stale messages.

A message belongs to the channel it was delivered on: once that channel is
closed (lost, or released), RabbitMQ hands the message out again, and
settling the old copy is pointless (``stale``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aio_pika
from aio_pika import exceptions as amqp_errors
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

__all__ = ["Consumer", "drain", "restored", "stale"]


@dataclass(slots=True)
class Consumer:
    """One consumer's channel, queue, consumer tag and the messages delivered to it."""

    channel: AbstractChannel
    queue: AbstractQueue
    tag: str
    inbox: asyncio.Queue[AbstractIncomingMessage] = field(default_factory=asyncio.Queue)


async def restored(channel: AbstractChannel) -> None:
    """Wait while the robust connection restores ``channel`` (the caller bounds it)."""
    if channel.is_closed and isinstance(channel, aio_pika.RobustChannel):
        await channel.ready()


def stale(message: AbstractIncomingMessage) -> bool:
    """Whether ``message`` came on a channel closed since (it is handed out again)."""
    try:
        return bool(message.channel.is_closed)
    except amqp_errors.ChannelInvalidStateError:
        return True


async def drain(inbox: asyncio.Queue[bytes]) -> AsyncIterator[bytes]:
    while True:
        yield await inbox.get()
