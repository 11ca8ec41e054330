"""Every Redis key name eventbus uses, in one place.

Every key that one script touches shares the hash tag ``{<prefix>}``
(``{eventbus}:events``, ``{eventbus}:delivery:<id>`` ...), so Redis Cluster
puts them in one slot and can run each script there. Pub/Sub channels are
not keys (a cluster broadcasts them to every node) and keep the untagged
``<prefix>:live:<team>``, which publishers of every version use.

``LegacyKeys`` names the layout before the hash tag, for the migration only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["Keys", "LegacyKeys"]


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one ``prefix`` (``broker.prefix``, default ``eventbus``)."""

    prefix: str = "eventbus"

    @property
    def tag(self) -> str:
        """The hash tag every key starts with: ``{<prefix>}``."""
        return "{" + self.prefix + "}"

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
        return f"{self.tag}:channels"

    def breaker(self, channel: str) -> str:
        """Hash: one channel's circuit (state, until, cooldown, failure run, outcome buckets)."""
        return f"{self.tag}:breaker:{channel}"

    def channel_minutes(self, channel: str) -> str:
        """Hash: one channel's attempts per minute over 25 h (``slot -> minute:ok:failed``)."""
        return f"{self.tag}:minutes:{channel}"

    def cooldown(self, subscription: str, values: str) -> str:
        """String, set NX with the window as expiry: the event holding a cooldown key."""
        return f"{self.tag}:cooldown:{subscription}:{values}"

    def silence(self, silence_id: str) -> str:
        """JSON string: one silence, expiring when it ends."""
        return f"{self.tag}:silence:{silence_id}"

    @property
    def silences(self) -> str:
        """Sorted set of silence ids by the time they end."""
        return f"{self.tag}:silences"

    @property
    def silences_version(self) -> str:
        """Counter raised on every change of the silences (workers poll it)."""
        return f"{self.tag}:silences:version"

    @property
    def silences_changed(self) -> str:
        """Pub/Sub channel: a notice that the silences changed (not a key)."""
        return f"{self.prefix}:silences:changed"

    def console(self, kind: str) -> str:
        """Hash: name -> JSON document of one API-defined channel or subscription."""
        return f"{self.tag}:console:{kind}"

    @property
    def console_version(self) -> str:
        """Counter raised on every change of the API-defined items (workers poll it)."""
        return f"{self.tag}:console:version"

    @property
    def console_changed(self) -> str:
        """Pub/Sub channel: a notice that the API-defined items changed (not a key)."""
        return f"{self.prefix}:console:changed"

    @property
    def console_audit(self) -> str:
        """Stream: who changed which API-defined item, and when (never a secret)."""
        return f"{self.tag}:console:audit"

    def alert(self, team_id: str, key: str) -> str:
        """JSON string: the state of one alert (team, key); see ``consumers.store.alerts``."""
        digest = hashlib.sha256(f"{team_id}\x00{key}".encode()).hexdigest()[:32]
        return f"{self.tag}:alert:{digest}"

    @property
    def alerts(self) -> str:
        """Sorted set of alert keys (``alert()`` names) by last change."""
        return f"{self.tag}:alerts"

    def alert_events(self, alert_id: str) -> str:
        """Sorted set of the event ids folded into one alert (by time), and their deliveries."""
        return f"{self.tag}:alert:{alert_id}:events"

    @property
    def layout(self) -> str:
        """String: the layout version these keys follow (set by the migration)."""
        return f"{self.tag}:layout"

    @property
    def migration_lock(self) -> str:
        """String, set NX with an expiry while one worker migrates the old layout."""
        return f"{self.tag}:migration:lock"


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
