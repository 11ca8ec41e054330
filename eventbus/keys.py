"""Every Redis key name eventbus uses, in one place.

Every key that one script touches shares the hash tag ``{<prefix>}``
(``{eventbus}:events``, ``{eventbus}:delivery:<id>`` ...), so Redis Cluster
puts them in one slot and can run each script there. Pub/Sub channels are
not keys (a cluster broadcasts them to every node) and keep the untagged
``<prefix>:live:<team>``, which publishers of every version use.

``LegacyKeys`` names the layout before the hash tag, for the migration only.

Partitions (``broker.partitions``): ``Keys.partition(k)`` names partition
``k``'s keys. Partition 0 is the unpartitioned layout itself (``{<prefix>}``),
so one partition is byte for byte what eventbus wrote before partitions.
Partition ``k >= 1`` has the tag ``{<prefix>#<k>}``: ``#`` is not allowed in
``broker.prefix``, so that tag is never another prefix's. Per partition, in
its slot (the commit script touches them together): the stream, its group,
dead letters, delivery records and their indexes, the retry schedule and
jobs, digest groups, digests and their sequence. Everything else (breaker,
per-minute counters, cooldowns, silences, console items, alerts, channel
states, layout and migration keys, the partition count) is global: its name
uses the base tag whatever the partition, so a partition's ``Keys`` can be
handed to code that also touches global keys.

``partition_of(team_id, n)`` is the one stable choice of a team's partition
(a BLAKE2b digest of the team id, not Python's per-process randomised
``hash()``; CRC32 was tried and put team-1, team-2 and team-3 all in one of
three partitions), so
publishers of any process agree and one team's events stay in order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["PARTITION_SEPARATOR", "Keys", "LegacyKeys", "partition_of", "qualified", "split_entry"]

# Between the prefix and the partition number in a partition's tag, and
# between a stream id and its partition in a qualified entry id. Neither a
# prefix (``broker.prefix``'s pattern) nor a stream id can contain it.
PARTITION_SEPARATOR = "#"
_ENTRY_SEPARATOR = "@"


def partition_of(team_id: str, partitions: int) -> int:
    """The partition of ``team_id`` among ``partitions`` (stable across processes)."""
    if partitions <= 1:
        return 0
    digest = hashlib.blake2b(team_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def qualified(entry_id: str, partition: int) -> str:
    """An entry id unique across partitions: ``<id>`` in partition 0, ``<id>@<k>`` else."""
    return entry_id if partition == 0 else f"{entry_id}{_ENTRY_SEPARATOR}{partition}"


def split_entry(key: str) -> tuple[str, int]:
    """``qualified()`` undone: (stream id, partition); a plain id is partition 0."""
    entry_id, found, part = key.partition(_ENTRY_SEPARATOR)
    if not found:
        return key, 0
    if not part.isdigit():
        raise ValueError(f"entry id {key!r}: the partition after {_ENTRY_SEPARATOR!r} is no number")
    return entry_id, int(part)


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one ``prefix`` (``broker.prefix``, default ``eventbus``)."""

    prefix: str = "eventbus"
    part: int = 0  # the partition whose keys these are (see the module docstring)

    @property
    def tag(self) -> str:
        """The hash tag of this partition's keys: ``{<prefix>}``, ``{<prefix>#<k>}``."""
        if self.part == 0:
            return "{" + self.prefix + "}"
        return "{" + self.prefix + PARTITION_SEPARATOR + str(self.part) + "}"

    @property
    def base_tag(self) -> str:
        """The hash tag of the global keys: ``{<prefix>}`` in every partition."""
        return "{" + self.prefix + "}"

    def partition(self, part: int) -> Keys:
        """The keys of partition ``part`` (0: the unpartitioned layout)."""
        if part < 0:
            raise ValueError(f"partition {part} is negative")
        return Keys(self.prefix, part)

    def partitions(self, count: int) -> list[Keys]:
        """The keys of partitions 0 .. count-1."""
        return [self.partition(part) for part in range(max(1, count))]

    @property
    def partition_count(self) -> str:
        """String: the ``broker.partitions`` the streams were written with (absent: 1)."""
        return f"{self.base_tag}:partitions"

    @property
    def events(self) -> str:
        """The durable stream of envelopes (field ``payload``)."""
        return f"{self.tag}:events"

    def live(self, team_id: str) -> str:
        """Pub/Sub channel of the live mirror for one team."""
        return f"{self.prefix}:live:{team_id}"

    @property
    def live_pattern(self) -> str:
        return f"{self.prefix}:live:*"

    @property
    def dlq(self) -> str:
        """Stream of dead letters (original fields + reason + time)."""
        return f"{self.tag}:dlq"

    def delivery(self, delivery_id: str) -> str:
        """JSON string: one delivery (event, subscription, channel) and its attempts."""
        return f"{self.tag}:delivery:{delivery_id}"

    @property
    def deliveries_index(self) -> str:
        """Sorted set of delivery ids by last update time (for queries)."""
        return f"{self.tag}:deliveries"

    def event_deliveries(self, event_id: str) -> str:
        """Set of delivery ids of one event."""
        return f"{self.tag}:event:{event_id}:deliveries"

    @property
    def retries(self) -> str:
        """Sorted set of delivery ids by the time their next attempt is due."""
        return f"{self.tag}:retries"

    def retry_job(self, delivery_id: str) -> str:
        """Hash with what a retry needs without the stream entry."""
        return f"{self.tag}:retry:{delivery_id}"

    @property
    def groups(self) -> str:
        """Sorted set of digest group ids by the time their next digest is due."""
        return f"{self.tag}:groups"

    def group(self, group_id: str) -> str:
        """Hash: one digest group (subscription, channel, values, open digest, last flush)."""
        return f"{self.tag}:group:{group_id}"

    def digest(self, digest_id: str) -> str:
        """Base of a digest's keys: ``<base>:ids`` (sorted set), ``<base>:events`` (hash)."""
        return f"{self.tag}:digest:{digest_id}"

    @property
    def digest_sequence(self) -> str:
        """Counter numbering digests, so a digest id is never used twice."""
        return f"{self.tag}:digests:seq"

    @property
    def channel_state(self) -> str:
        """Hash: channel name -> JSON state (disabled, reason, last outcome)."""
        return f"{self.base_tag}:channels"

    def breaker(self, channel: str) -> str:
        """Hash: one channel's circuit (state, until, cooldown, failure run, outcome buckets)."""
        return f"{self.base_tag}:breaker:{channel}"

    def channel_minutes(self, channel: str) -> str:
        """Hash: one channel's attempts per minute over 25 h (``slot -> minute:ok:failed``)."""
        return f"{self.base_tag}:minutes:{channel}"

    def cooldown(self, subscription: str, values: str) -> str:
        """String, set NX with the window as expiry: the event holding a cooldown key."""
        return f"{self.base_tag}:cooldown:{subscription}:{values}"

    def silence(self, silence_id: str) -> str:
        """JSON string: one silence, expiring when it ends."""
        return f"{self.base_tag}:silence:{silence_id}"

    @property
    def silences(self) -> str:
        """Sorted set of silence ids by the time they end."""
        return f"{self.base_tag}:silences"

    @property
    def silences_version(self) -> str:
        """Counter raised on every change of the silences (workers poll it)."""
        return f"{self.base_tag}:silences:version"

    @property
    def silences_changed(self) -> str:
        """Pub/Sub channel: a notice that the silences changed (not a key)."""
        return f"{self.prefix}:silences:changed"

    def console(self, kind: str) -> str:
        """Hash: name -> JSON document of one API-defined channel or subscription."""
        return f"{self.base_tag}:console:{kind}"

    @property
    def console_version(self) -> str:
        """Counter raised on every change of the API-defined items (workers poll it)."""
        return f"{self.base_tag}:console:version"

    @property
    def console_changed(self) -> str:
        """Pub/Sub channel: a notice that the API-defined items changed (not a key)."""
        return f"{self.prefix}:console:changed"

    @property
    def console_audit(self) -> str:
        """Stream: who changed which API-defined item, and when (never a secret)."""
        return f"{self.base_tag}:console:audit"

    def alert(self, team_id: str, key: str) -> str:
        """JSON string: the state of one alert (team, key); see ``consumers.store.alerts``."""
        digest = hashlib.sha256(f"{team_id}\x00{key}".encode()).hexdigest()[:32]
        return f"{self.base_tag}:alert:{digest}"

    @property
    def alerts(self) -> str:
        """Sorted set of alert keys (``alert()`` names) by last change."""
        return f"{self.base_tag}:alerts"

    def alert_events(self, alert_id: str) -> str:
        """Sorted set of the event ids folded into one alert (by time), and their deliveries."""
        return f"{self.base_tag}:alert:{alert_id}:events"

    @property
    def layout(self) -> str:
        """String: the layout version these keys follow (set by the migration)."""
        return f"{self.base_tag}:layout"

    @property
    def migration_lock(self) -> str:
        """String, set NX with an expiry while one worker migrates the old layout."""
        return f"{self.base_tag}:migration:lock"


@dataclass(frozen=True, slots=True)
class LegacyKeys:
    """The key layout before the hash tag (eventbus 0.x), read by the migration."""

    prefix: str = "eventbus"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}:dlq"

    @property
    def deliveries_index(self) -> str:
        return f"{self.prefix}:deliveries"

    @property
    def retries(self) -> str:
        return f"{self.prefix}:retries"

    @property
    def channel_state(self) -> str:
        return f"{self.prefix}:channels"

    @property
    def delivery_pattern(self) -> str:
        """SCAN pattern of ``<prefix>:delivery:<id>`` (glob characters escaped)."""
        return f"{_glob_escape(self.prefix)}:delivery:*"

    @property
    def retry_job_pattern(self) -> str:
        return f"{_glob_escape(self.prefix)}:retry:*"

    @property
    def event_deliveries_pattern(self) -> str:
        return f"{_glob_escape(self.prefix)}:event:*:deliveries"

    def renamed(self, key: str, keys: Keys) -> str:
        """The tagged name of a legacy per-delivery key (``<prefix>:x`` -> ``{<prefix>}:x``)."""
        if not key.startswith(self.prefix + ":"):
            raise ValueError(f"key {key!r} is not under the prefix {self.prefix!r}")
        return keys.tag + key[len(self.prefix) :]


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
