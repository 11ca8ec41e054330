"""The ``Broker`` protocol: what publishers, workers and the live feed need of a broker.

Two backends stand behind it: ``RedisStreams`` (the default) and
``RabbitMQ``; the contract tests in ``tests/eventbus/brokers`` run the same
cases against both. The guarantees every backend keeps:

- ``publish`` returns only once the broker holds the message durably, and
  raises ``BrokerError`` otherwise (refused, unroutable, timed out);
  ``BrokerUnavailable`` when the broker cannot be reached.
- ``consume`` hands out each message to one consumer of a group; a message
  is gone only once ``ack`` (or ``dead_letter``) settled it. A consumer that
  stops (``release``, a crash, a lost connection) without settling leaves
  its messages to be received again, with ``receives`` counting up.
- A message received more than ``consumer.max_receives`` times is not
  handed out again: it becomes a dead letter with the reason.
- A durable publish is mirrored to the live feed; a transient one goes only
  there. The live feed is best effort and replays nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Broker", "DeadLetter", "Received"]


@dataclass(slots=True)
class Received:
    """One message handed to a consumer.

    ``id`` is what ``ack`` and ``dead_letter`` take: the stream id on Redis;
    on RabbitMQ a handle valid while this consumer holds the message.
    """

    id: str
    payload: bytes | None
    receives: int  # how many times the message was handed out, this time included


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message set aside with the reason (``max_receives``, ``delivery_limit``, ...)."""

    id: str  # what ``redrive`` takes
    original_id: str  # the message's id before it died (stream id, or event id)
    reason: str
    error: str
    at: float  # Unix time it died, 0 when unknown
    payload: bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "original_id": self.original_id,
            "reason": self.reason,
            "error": self.error,
            "at": self.at,
            "payload": self.payload.decode("utf-8", "replace")[:2000],
        }


@runtime_checkable
class Broker(Protocol):
    """The operations every backend provides (see the module docstring)."""

    async def publish(self, team_id: str, payload: str) -> str:
        """Publish one envelope (JSON) durably and mirror it live; its broker id."""
        ...

    async def publish_many(self, items: Sequence[tuple[str, str]]) -> list[str]:
        """Publish (team_id, payload) pairs, confirmations pipelined; ids in order."""
        ...

    async def publish_transient(self, team_id: str, payload: str) -> int:
        """Mirror live only; how many listeners got it (0 where the broker cannot tell)."""
        ...

    async def ensure_group(self, group: str) -> None:
        """Declare what a consumer group reads from; declaring twice is fine."""
        ...

    async def consume(
        self, group: str, consumer: str, count: int, block: float | None
    ) -> list[Received]:
        """Up to ``count`` messages, waiting up to ``block`` seconds for the first."""
        ...

    async def ack(self, group: str, ids: Sequence[str]) -> None:
        """Settle messages for good (after their outcome is recorded)."""
        ...

    async def dead_letter(self, group: str, message: Received, reason: str, error: str) -> str:
        """Set a received message aside with the reason and settle it; the dead letter's id."""
        ...

    async def release(self, group: str, consumer: str) -> None:
        """Stop receiving for ``consumer``; what it holds unsettled is received again."""
        ...

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` dead letters, left in place."""
        ...

    async def redrive(self, ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """Publish dead letters again (``None``: all); (dead letter id, new id) pairs."""
        ...

    def live(self) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Live mirror messages (``eventbus.live`` format) of every team, from now on."""
        ...
