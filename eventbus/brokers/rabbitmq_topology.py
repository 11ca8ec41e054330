"""The RabbitMQ topology of one prefix: names, and declaring it idempotently.

::

    <prefix>.events   durable topic exchange; routing key = event type
    <prefix>.<group>  quorum queue per consumer group, bound with "#";
                      x-delivery-limit = consumer.max_receives, dead letters
                      (at least once) to the <prefix>.dlq exchange
    <prefix>.dlq      durable fanout exchange and the durable queue behind it
    <prefix>.live     topic exchange, not durable: the live mirror; readers
                      bind an exclusive auto-delete queue of their own

Declaring what exists with the same arguments is a no-op, so every process
declares at start; ``eventbus broker setup`` does it once for vhosts where
the application's user may not configure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

__all__ = ["Topology"]


@dataclass(frozen=True, slots=True)
class Topology:
    """Exchange and queue names under ``broker.prefix``."""

    prefix: str
    max_receives: int = 5

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def live(self) -> str:
        return f"{self.prefix}.live"

    @property
    def dlq(self) -> str:
        """The dead-letter exchange, and the queue holding the dead letters."""
        return f"{self.prefix}.dlq"

    def queue(self, group: str) -> str:
        return f"{self.prefix}.{group}"

    def group_arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.max_receives,
            "x-dead-letter-exchange": self.dlq,
            # at-least-once dead-lettering (3.10+) needs reject-publish overflow
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    async def declare_exchanges(
        self, channel: AbstractChannel
    ) -> tuple[AbstractExchange, AbstractExchange, AbstractExchange]:
        """(events, live, dlq) exchanges, and the dead-letter queue bound to dlq."""
        events = await channel.declare_exchange(
            self.events, aio_pika.ExchangeType.TOPIC, durable=True
        )
        live = await channel.declare_exchange(self.live, aio_pika.ExchangeType.TOPIC)
        dlq = await channel.declare_exchange(self.dlq, aio_pika.ExchangeType.FANOUT, durable=True)
        # A classic queue: listing dead letters reads them and puts them back in order.
        dead = await channel.declare_queue(
            self.dlq, durable=True, arguments={"x-queue-type": "classic"}
        )
        await dead.bind(dlq, "#")
        return events, live, dlq

    async def declare_group(self, channel: AbstractChannel, group: str) -> AbstractQueue:
        """The group's quorum queue, bound to the events exchange with ``#``."""
        queue = await channel.declare_queue(
            self.queue(group), durable=True, arguments=self.group_arguments()
        )
        await queue.bind(self.events, "#")
        return queue

    async def delete(self, channel: AbstractChannel, groups: list[str]) -> None:
        """Remove every queue and exchange of this prefix (tests, teardown)."""
        for name in [*(self.queue(group) for group in groups), self.dlq]:
            await channel.queue_delete(name)
        for name in (self.events, self.live, self.dlq):
            await channel.exchange_delete(name)
