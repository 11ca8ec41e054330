"""What finished work changes in the store, committed atomically with its XACK.

Dispatch builds a ``Settlement`` per entry (or due retry); the store commits
many of them in one script call. This type belongs to the store, so the
store never needs to know how the pipeline decided any of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eventbus.brokers.redis_streams import StreamEntry

from .records import ChannelState, DeliveryRecord
from .retries import RetryJob

__all__ = ["DeadLetterOrder", "Settlement"]


@dataclass(frozen=True, slots=True)
class DeadLetterOrder:
    """Move ``entry`` to the dead letters, with why."""

    entry: StreamEntry
    reason: str
    error: str


@dataclass(slots=True)
class Settlement:
    """Everything one entry (or one retry) changes, committed atomically.

    ``records`` are written (attempts included), ``duplicates`` (records of
    deliveries found delivered already, with a note of the entry that
    repeated them) are written only over a record still ``delivered``,
    ``retries`` scheduled at
    their due time, ``retries_done`` removed from the schedule, ``disable``
    sets channel states, ``dead_letter`` moves the entry aside, and ``ack``
    (a stream entry id) is acknowledged in the same step.
    """

    records: list[DeliveryRecord] = field(default_factory=list)
    duplicates: list[DeliveryRecord] = field(default_factory=list)
    retries: list[tuple[RetryJob, float]] = field(default_factory=list)
    retries_done: list[str] = field(default_factory=list)
    dead_letter: DeadLetterOrder | None = None
    disable: list[tuple[str, ChannelState]] = field(default_factory=list)
    ack: str | None = None
