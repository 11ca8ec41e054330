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

__all__ = ["PENDING_DIGEST", "DeadLetterOrder", "GroupFlush", "Grouped", "Settlement"]

# The ``refers_to`` of a grouped record until the commit script names its digest.
PENDING_DIGEST = "dg_pending"


@dataclass(frozen=True, slots=True)
class DeadLetterOrder:
    """Move ``entry`` to the dead letters, with why."""

    entry: StreamEntry
    reason: str
    error: str


@dataclass(frozen=True, slots=True)
class Grouped:
    """Fold one event into the open digest of group ``group_id`` (``consumers.store.groups``).

    ``record`` is written by the commit script with ``refers_to`` set to the
    digest the script puts the event in (``PENDING_DIGEST`` until then); it
    is not written, nor the event added again, over a record already grouped.
    """

    record: DeliveryRecord
    group_id: str
    values: bytes  # JSON object: group_by path -> value
    payload: bytes  # the envelope, for the digest
    wait: float
    interval: float
    max_events: int


@dataclass(frozen=True, slots=True)
class GroupFlush:
    """Digest ``digest_id`` of group ``group_id`` is settled: drop its events, schedule the next."""

    group_id: str
    digest_id: str


@dataclass(slots=True)
class Settlement:
    """Everything one entry (or one retry) changes, committed atomically.

    ``records`` are written (attempts included), ``duplicates`` (records of
    deliveries found delivered already, with a note of the entry that
    repeated them) are written only over a record still ``delivered``,
    ``retries`` scheduled at
    their due time, ``retries_done`` removed from the schedule, ``disable``
    sets channel states, ``grouped`` folds events into digests, ``flushed``
    ends the digests sent, ``dead_letter`` moves the entry aside, and ``ack``
    (a stream entry id) is acknowledged in the same step.
    """

    records: list[DeliveryRecord] = field(default_factory=list)
    duplicates: list[DeliveryRecord] = field(default_factory=list)
    retries: list[tuple[RetryJob, float]] = field(default_factory=list)
    retries_done: list[str] = field(default_factory=list)
    dead_letter: DeadLetterOrder | None = None
    disable: list[tuple[str, ChannelState]] = field(default_factory=list)
    grouped: list[Grouped] = field(default_factory=list)
    flushed: list[GroupFlush] = field(default_factory=list)
    ack: str | None = None
