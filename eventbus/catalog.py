"""The catalog of event types: which are durable, which transient.

Durable types go to the stream and can be subscribed to; transient types go
to the live mirror only and are never delivered. A ``durable_only`` type is
durable and may not be published transiently either.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from .envelope import validate_event_type
from .errors import CatalogError

__all__ = [
    "ALERT_TRANSITION_TYPES",
    "DEFAULT_TYPES",
    "OPERATOR_CHANNEL_DISABLED",
    "OPERATOR_TEAM",
    "Catalog",
    "Kind",
]

# Events the daemon itself publishes, under their own team, for operators.
OPERATOR_TEAM = "eventbus"
OPERATOR_CHANNEL_DISABLED = "eventbus.channel.disabled"
# Transient events on the live feed (the alert's team) when an alert changes:
# transition value -> event type.
ALERT_TRANSITION_TYPES: Mapping[str, str] = {
    "raised": "eventbus.alert.raised",
    "touched": "eventbus.alert.touched",
    "acknowledged": "eventbus.alert.acknowledged",
    "resolved": "eventbus.alert.resolved",
    "repeat": "eventbus.alert.repeat",
}


class Kind(StrEnum):
    DURABLE = "durable"
    DURABLE_ONLY = "durable_only"
    TRANSIENT = "transient"


DEFAULT_TYPES: Mapping[str, Kind] = {
    "capsule.create": Kind.DURABLE,
    "capsule.pause": Kind.DURABLE,
    "capsule.resume": Kind.DURABLE,
    "capsule.destroy": Kind.DURABLE,
    "template.snapshot.create": Kind.DURABLE,
    "template.snapshot.delete": Kind.DURABLE,
    "host.up": Kind.DURABLE,
    "host.down": Kind.DURABLE,
    "capsule.state.changed": Kind.TRANSIENT,
    "eventbus.channel.disabled": Kind.DURABLE,
    **{name: Kind.TRANSIENT for name in ALERT_TRANSITION_TYPES.values()},
}


class Catalog:
    """Declared event types; ``strict`` rejects types that are not declared."""

    def __init__(
        self,
        types: Mapping[str, Kind | str] | None = None,
        *,
        strict: bool = False,
        auto_resolve: Mapping[str, float] | None = None,
    ):
        merged: dict[str, Kind] = dict(DEFAULT_TYPES)
        for name, kind in (types or {}).items():
            merged[validate_event_type(name)] = Kind(kind)
        self._types = merged
        self.strict = strict
        self._auto_resolve = dict(auto_resolve or {})

    def auto_resolve(self, event_type: str) -> float | None:
        """Seconds an alert raised by ``event_type`` may go untouched before it resolves."""
        return self._auto_resolve.get(event_type)

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._types

    def __repr__(self) -> str:
        return f"Catalog({len(self._types)} types, strict={self.strict})"

    @property
    def types(self) -> Mapping[str, Kind]:
        return dict(self._types)

    def kind(self, event_type: str) -> Kind | None:
        return self._types.get(event_type)

    def is_subscribable(self, event_type: str) -> bool:
        """Transient types never reach subscriptions; unknown ones do unless strict."""
        kind = self._types.get(event_type)
        if kind is None:
            return not self.strict
        return kind is not Kind.TRANSIENT

    def check_durable(self, event_type: str) -> None:
        kind = self._check_known(event_type)
        if kind is Kind.TRANSIENT:
            raise CatalogError(
                f"{event_type!r} is a transient event type (live mirror only): "
                "publish it with publish_transient(), or declare it durable in catalog.types"
            )

    def check_transient(self, event_type: str) -> None:
        kind = self._check_known(event_type)
        if kind is Kind.DURABLE_ONLY:
            raise CatalogError(
                f"{event_type!r} is declared durable_only: publish it with publish() "
                "so subscribers receive it"
            )

    def _check_known(self, event_type: str) -> Kind | None:
        kind = self._types.get(event_type)
        if kind is None and self.strict:
            raise CatalogError(
                f"{event_type!r} is not in the catalog and catalog.strict is on: "
                "add it under catalog.types in the configuration, or fix the type name"
            )
        return kind
