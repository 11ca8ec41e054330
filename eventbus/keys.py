"""Every Redis key name eventbus uses, in one place."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Keys"]


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one ``prefix`` (``broker.prefix``, default ``eventbus``)."""

    prefix: str = "eventbus"

    @property
    def events(self) -> str:
        """The durable stream of envelopes (field ``payload``)."""
        return f"{self.prefix}:events"

    def live(self, team_id: str) -> str:
        """Pub/Sub channel of the live mirror for one team."""
        return f"{self.prefix}:live:{team_id}"

    @property
    def live_pattern(self) -> str:
        return f"{self.prefix}:live:*"

    @property
    def dlq(self) -> str:
        """Stream of dead letters (original fields + reason + time)."""
        return f"{self.prefix}:dlq"

    def delivery(self, delivery_id: str) -> str:
        """JSON string: one delivery (event, subscription, channel) and its attempts."""
        return f"{self.prefix}:delivery:{delivery_id}"

    @property
    def deliveries_index(self) -> str:
        """Sorted set of delivery ids by last update time (for queries)."""
        return f"{self.prefix}:deliveries"

    def event_deliveries(self, event_id: str) -> str:
        """Set of delivery ids of one event."""
        return f"{self.prefix}:event:{event_id}:deliveries"

    @property
    def retries(self) -> str:
        """Sorted set of delivery ids by the time their next attempt is due."""
        return f"{self.prefix}:retries"

    def retry_job(self, delivery_id: str) -> str:
        """Hash with what a retry needs without the stream entry."""
        return f"{self.prefix}:retry:{delivery_id}"

    @property
    def channel_state(self) -> str:
        """Hash: channel name -> JSON state (disabled, reason, last outcome)."""
        return f"{self.prefix}:channels"
