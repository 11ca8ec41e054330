"""Prometheus metrics of one process, on a registry of its own.

Labels are bounded: channel type, channel name (names come from the
configuration, so there are as many as the operator defined), outcome
class, group, reason. Never ids, values chosen at run time, or anything
secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._deliveries()
        self._stream()
        self._http()
        self._routing()
        # Labelled children of the per-attempt metrics, looked up once each:
        # labels() is a visible cost at thousands of deliveries a second.
        self._attempts: dict[tuple[str, str, str], Any] = {}
        self._seconds: dict[tuple[str, str], Any] = {}
        self._filtered: dict[tuple[str, str], Any] = {}
        self._routed: dict[tuple[str, str], Any] = {}

    def _deliveries(self) -> None:
        registry = self.registry
        self.deliveries = Counter(
            "eventbus_deliveries",
            "Delivery attempts by channel and outcome class",
            ["channel_type", "channel", "outcome"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "eventbus_delivery_seconds",
            "Time one delivery attempt took",
            ["channel_type", "channel"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.deliveries_failed = Counter(
            "eventbus_deliveries_failed",
            "Deliveries that finally failed (permanent error, or retries given up)",
            ["channel_type", "channel"],
            registry=registry,
        )
        self.retries_scheduled = Counter(
            "eventbus_retries_scheduled", "Retries put on the durable schedule", registry=registry
        )
        self.retries_due = Gauge(
            "eventbus_retries_due",
            "Retries whose time has come, not yet attempted",
            registry=registry,
        )
        self.circuit_state = Gauge(
            "eventbus_channel_circuit_state",
            "Circuit breaker of each channel: 0 closed, 1 half-open (one probe), 2 open",
            ["channel"],
            registry=registry,
        )
        self.channels_disabled = Counter(
            "eventbus_channels_disabled",
            "Channels disabled (410 Gone and the like)",
            registry=registry,
        )

    def _stream(self) -> None:
        registry = self.registry
        self.events_consumed = Counter(
            "eventbus_events_consumed", "Stream entries processed by this worker", registry=registry
        )
        self.dead_letters = Counter(
            "eventbus_dead_letters",
            "Entries moved to the dead letters",
            ["reason"],
            registry=registry,
        )
        self.stream_lag = Gauge(
            "eventbus_stream_lag",
            "Entries in the stream not yet delivered to the consumer group",
            ["group", "partition"],
            registry=registry,
        )
        self.stream_pending = Gauge(
            "eventbus_stream_pending",
            "Entries delivered to the group and not yet acknowledged",
            ["group", "partition"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "eventbus_queue_depth",
            "RabbitMQ mode: messages of the group's queue ready, plus those this worker "
            "holds unacknowledged",
            ["group"],
            registry=registry,
        )
        self.publish_errors = Counter(
            "eventbus_publish_errors",
            "Publishes that failed (CLI and operator events)",
            registry=registry,
        )

    def _http(self) -> None:
        registry = self.registry
        self.sse_clients = Gauge("eventbus_sse_clients", "Connected SSE clients", registry=registry)
        self.sse_dropped = Counter(
            "eventbus_sse_dropped",
            "SSE clients disconnected for falling more than http.client_buffer messages behind",
            registry=registry,
        )

    def _routing(self) -> None:
        registry = self.registry
        self.events_filtered = Counter(
            "eventbus_events_filtered",
            "Events a subscription matched by team, type and outcome but its severity or "
            "where filters kept out (no record is written for them)",
            ["subscription", "reason"],
            registry=registry,
        )
        self.deliveries_routed = Counter(
            "eventbus_deliveries_routed",
            "Deliveries settled by routing without sending (suppressed, grouped, silenced, "
            "merged), by subscription",
            ["subscription", "state"],
            registry=registry,
        )

        self.alert_transitions = Counter(
            "eventbus_alert_transitions",
            "Alert transitions decided by this worker (raised, touched, acknowledged, "
            "resolved, repeat)",
            ["transition"],
            registry=registry,
        )
        self.alerts_firing = Gauge(
            "eventbus_alerts_firing",
            "Open alerts by team, severity and status (firing or acknowledged)",
            ["team", "severity", "status"],
            registry=registry,
        )

    def alert_transition(self, transition: str) -> None:
        self.alert_transitions.labels(transition).inc()

    def open_alerts(self, counts: Mapping[tuple[str, str, str], int]) -> None:
        """Set the open-alert gauge: (team, severity, status) -> how many (others 0)."""
        self.alerts_firing.clear()
        for (team, severity, status), count in counts.items():
            self.alerts_firing.labels(team, severity, status).set(count)

    def filtered(self, subscription: str, reason: str) -> None:
        """Count an event a subscription's filters kept out (reason: severity or where)."""
        counter = self._filtered.get((subscription, reason))
        if counter is None:
            counter = self._filtered[subscription, reason] = self.events_filtered.labels(
                subscription, reason
            )
        counter.inc()

    def routed(self, subscription: str, state: str) -> None:
        """Count a delivery routing settled without sending it (its record's state)."""
        counter = self._routed.get((subscription, state))
        if counter is None:
            counter = self._routed[subscription, state] = self.deliveries_routed.labels(
                subscription, state
            )
        counter.inc()

    def attempted(self, channel_type: str, outcome: str, seconds: float, channel: str = "") -> None:
        """Count one delivery attempt and observe how long it took."""
        counter = self._attempts.get((channel_type, channel, outcome))
        if counter is None:
            counter = self._attempts[channel_type, channel, outcome] = self.deliveries.labels(
                channel_type, channel, outcome
            )
        counter.inc()
        histogram = self._seconds.get((channel_type, channel))
        if histogram is None:
            histogram = self._seconds[channel_type, channel] = self.delivery_seconds.labels(
                channel_type, channel
            )
        histogram.observe(seconds)

    def circuit(self, channel: str, state: int) -> None:
        """Set a channel's circuit state (0 closed, 1 half-open, 2 open)."""
        self.circuit_state.labels(channel).set(state)

    def failed(self, channel_type: str, channel: str) -> None:
        """Count a delivery that will not be attempted again."""
        self.deliveries_failed.labels(channel_type, channel).inc()
