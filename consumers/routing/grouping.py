"""Grouping: events of one group folded into one digest, as Alertmanager groups alerts.

A subscription with ``group_by`` sends digests instead of one notification
per event. A group is one (subscription, channel, values of the ``group_by``
paths); its id is a hash of the three (``group_id``). The first event of a
group opens a digest, sent ``group_wait`` later; each digest holds the events
that arrived since the previous one, and after a digest the next is sent no
sooner than ``group_interval`` after it. An event arriving once the group has
been quiet for ``group_interval`` opens a new digest (``group_wait`` again).

Here each target of a grouping subscription is settled ``grouped`` and its
event is handed to the store (``Settlement.grouped``); the state itself lives
in Redis (``consumers.store.groups``) and changes only in the commit script,
together with the records and the XACK, so a crash loses no grouped event
and sends no digest twice (invariant 12).

Which digest an event joins is decided inside that script, not here: between
this decision and the commit another worker may have sent the open digest.
So the record is written by the script, which puts in ``refers_to`` the id
of the digest it adds the event to (``dg_<group id>_<n>``, ``n`` from a
sequence taken when that digest opens). A record grouped already (the entry
reclaimed, or published twice) is left as it is and its event is not added
again: re-grouping is idempotent.

Digests are sent by ``consumers.flushing`` (any worker, claimed atomically)
and rendered by ``consumers.digests``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson

from eventbus.logs import HotLogger
from eventbus.paths import Reader, reader
from eventbus.settings import Settings

from ..store import PENDING_DIGEST, DeliveryStatus, Grouped
from ..work import Target, Work

__all__ = ["Grouper", "group_id"]

# The line per delivery, as dispatch writes for the deliveries it sends.
_delivery_log = HotLogger("eventbus.delivery")


def group_id(subscription: str, channel: str, values: Sequence[str | None]) -> str:
    """The stable id of one group: 24 hex digits of a hash of its three parts."""
    raw = orjson.dumps([subscription, channel, list(values)])
    return hashlib.sha256(raw).hexdigest()[:24]


class Grouper:
    """Puts targets of grouping subscriptions into their group's digest."""

    def __init__(self) -> None:
        self._channel_types: dict[str, str] = {}
        self._readers: dict[tuple[str, ...], list[Reader]] = {}
        self._active = True  # whether any subscription groups (known once configured)

    def reconfigure(self, settings: Settings) -> None:
        self._channel_types = {spec.name: spec.kind for spec in settings.channels}
        self._active = any(sub.group_by for sub in settings.subscriptions)

    def apply(self, works: Sequence[Work], now: float) -> None:
        """Settle targets of subscriptions with ``group_by`` as ``grouped``."""
        if not self._active:
            return
        for work in works:
            if work.event is None:
                continue
            for target in [t for t in work.targets if t.subscription.group_by]:
                self._fold(work, target, now)

    def _fold(self, work: Work, target: Target, now: float) -> None:
        assert work.event is not None
        sub = target.subscription
        paths = tuple(sub.group_by or ())
        readers = self._readers.get(paths)
        if readers is None:
            readers = self._readers[paths] = [reader(path) for path in paths]
        values = [read(work.event) for read in readers]
        shown = ", ".join(f"{path}={value}" for path, value in zip(paths, values, strict=True))
        record = work.unsent(
            target,
            DeliveryStatus.GROUPED,
            f"folded into the digest of {shown}",
            now,
            refers_to=PENDING_DIGEST,
            channel_type=self._channel_types.get(target.channel_name, ""),
        )
        # Written by the commit script, which names the digest (see above).
        work.settlement.records.remove(record)
        gid = group_id(sub.name, target.channel_name, values)
        _delivery_log.get().info(
            "delivery.grouped",
            event_id=record.event_id,
            delivery_id=record.id,
            channel=record.channel,
            subscription=sub.name,
            event_type=record.event_type,
            group_id=gid,
        )
        work.settlement.grouped.append(
            Grouped(
                record=record,
                group_id=gid,
                values=orjson.dumps(dict(zip(paths, values, strict=True))),
                payload=work.payload,
                wait=sub.group_wait,
                interval=sub.group_interval,
                max_events=sub.digest_max_events,
            )
        )
