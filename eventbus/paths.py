"""Paths into an event, as subscriptions name them in ``where``, keys and silences.

``event``, ``outcome`` (``success``, ``error`` or ``none``), ``severity`` (the
effective one, see ``Event.level``), ``team_id`` (``team`` for short),
``error``, ``actor.type``, ``actor.id``, ``actor.name``, ``resource.type``,
``resource.id``, ``resource`` (``type:id``, for keys) and ``metadata.<key>``.
A path whose value is absent (no ``error``, a metadata key not sent) reads
as ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from difflib import get_close_matches

from .envelope import Event

__all__ = ["PATHS", "PathError", "check_path", "reader", "value_of", "values_of"]


class PathError(ValueError):
    """A path that names nothing in an event; the message lists the valid ones."""


Reader = Callable[[Event], str | None]

PATHS: dict[str, Reader] = {
    "event": lambda event: event.event,
    "outcome": lambda event: event.outcome_name,
    "severity": lambda event: event.level.value,
    "team_id": lambda event: event.team_id,
    "team": lambda event: event.team_id,
    "error": lambda event: event.error,
    "actor.type": lambda event: event.actor.type.value,
    "actor.id": lambda event: event.actor.id,
    "actor.name": lambda event: event.actor.name,
    "resource.type": lambda event: event.resource.type,
    "resource.id": lambda event: event.resource.id,
    "resource": lambda event: f"{event.resource.type}:{event.resource.id}",
}

_METADATA = "metadata."


def check_path(path: str) -> str:
    """``path`` itself when it is valid; else ``PathError`` saying what would be."""
    if path in PATHS or (path.startswith(_METADATA) and len(path) > len(_METADATA)):
        return path
    close = get_close_matches(path, [*PATHS, "metadata.<key>"], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise PathError(f"unknown path {path!r}{hint}: use one of {', '.join(PATHS)} or metadata.<key>")


def reader(path: str) -> Reader:
    """A function reading ``path`` from an event (checked once, used per event)."""
    check_path(path)
    found = PATHS.get(path)
    if found is not None:
        return found
    key = path[len(_METADATA) :]
    return lambda event: event.metadata.get(key)


def value_of(event: Event, path: str) -> str | None:
    """The value at ``path`` in ``event``, ``None`` when absent."""
    return reader(path)(event)


def values_of(event: Event, paths: Sequence[str]) -> tuple[str | None, ...]:
    """The values at each of ``paths`` (a cooldown or group key)."""
    return tuple(reader(path)(event) for path in paths)
