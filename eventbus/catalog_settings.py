"""The ``catalog`` and ``alerts`` sections of the settings (re-exported by ``eventbus.settings``).

``catalog.types`` declares event types: a kind, or ``{kind, auto_resolve}``
where ``auto_resolve`` is how long an alert raised by that type may go
untouched before the worker resolves it. ``alerts.retention`` is how long
resolved alerts are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .catalog import Catalog, Kind
from .durations import Duration
from .envelope import validate_event_type

__all__ = ["AlertSettings", "CatalogSettings", "TypeDeclaration"]


class TypeDeclaration(BaseModel):
    """A catalog type with more than its kind: ``{kind: durable, auto_resolve: 30m}``."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind = Kind.DURABLE
    auto_resolve: Duration | None = Field(
        None, gt=0, description="resolve an alert of this type left untouched this long"
    )


class CatalogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strict: bool = False
    types: dict[str, TypeDeclaration] = Field(
        default_factory=dict,
        description="name -> kind (durable, durable_only, transient) or {kind, auto_resolve}",
    )

    @field_validator("types", mode="before")
    @classmethod
    def _kinds_as_declarations(cls, types: Any) -> Any:
        # ``name: durable`` is short for ``name: {kind: durable}``.
        if not isinstance(types, Mapping):
            return types
        return {
            name: {"kind": declared} if isinstance(declared, str) else declared
            for name, declared in types.items()
        }

    @field_validator("types")
    @classmethod
    def _check_names(cls, types: dict[str, TypeDeclaration]) -> dict[str, TypeDeclaration]:
        # Caught here, a bad name is a config problem, not a ValueError at build().
        for name in types:
            validate_event_type(name)
        return types

    def build(self) -> Catalog:
        kinds = {name: declared.kind for name, declared in self.types.items()}
        auto = {
            name: declared.auto_resolve
            for name, declared in self.types.items()
            if declared.auto_resolve
        }
        return Catalog(kinds, strict=self.strict, auto_resolve=auto)


class AlertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retention: Duration = Field(7 * 86400.0, gt=0, description="how long resolved alerts stay")
