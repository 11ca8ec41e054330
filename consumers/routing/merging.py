"""One delivery per channel per event: the first matching subscription delivers.

When several subscriptions of one event name the same channel, that channel
receives the event once, from the first of them in file order (its
templates apply). The others' targets are settled ``merged``, their record
naming the delivering subscription and referring to its delivery id. It
runs on the targets silences left; cooldown and grouping come after, and
decide for the delivering target.

``overlaps`` finds the pairs a configuration makes likely, for ``config
check``: same channel, teams and outcomes that can meet, severities that
can meet, event patterns that can match one type. ``where`` filters are not
compared (they may keep two subscriptions apart, so those are "may").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from eventbus.envelope import Severity
from eventbus.filters import FilterError, severity_set
from eventbus.settings import SubscriptionSpec

from ..store import DeliveryStatus
from ..work import Target, Work

__all__ = ["Overlap", "globs_overlap", "merge", "overlaps"]


def merge(work: Work, now: float, kinds: Mapping[str, str] | None = None) -> None:
    """Settle targets whose channel an earlier subscription delivers to as ``merged``.

    ``kinds`` maps a channel name to its type, for the records.
    """
    if len(work.targets) < 2:
        return
    first: dict[str, Target] = {}
    for target in list(work.targets):
        delivering = first.setdefault(target.channel_name, target)
        if delivering is target:
            continue
        name = target.channel_name
        work.unsent(
            target,
            DeliveryStatus.MERGED,
            f"subscription {delivering.subscription.name!r} delivers this event to "
            f"channel {name!r}",
            now,
            refers_to=delivering.id,
            channel_type=(kinds or {}).get(name, ""),
        )


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two subscriptions that can match one event and name one channel."""

    channel: str
    delivers: str  # the first in file order
    merged: str
    filtered: bool  # either has where filters: they may never meet


def overlaps(subscriptions: Sequence[SubscriptionSpec]) -> list[Overlap]:
    """The overlaps visible in the configuration, by channel then file order."""
    by_channel: dict[str, list[SubscriptionSpec]] = defaultdict(list)
    for sub in subscriptions:
        if sub.enabled:
            for name in dict.fromkeys(sub.channels):
                by_channel[name].append(sub)
    found = []
    for channel, subs in by_channel.items():
        for first, second in _pairs(subs):
            if _can_meet(first, second):
                filtered = bool(first.where) or bool(second.where)
                found.append(Overlap(channel, first.name, second.name, filtered))
    return found


def _pairs(
    subs: Sequence[SubscriptionSpec],
) -> Iterable[tuple[SubscriptionSpec, SubscriptionSpec]]:
    """Pairs (in file order) whose teams can meet: same team, or either is "*"."""
    by_team: dict[str, list[int]] = defaultdict(list)
    for index, sub in enumerate(subs):
        by_team[sub.team].append(index)
    every = by_team.pop("*", [])
    for indexes in by_team.values():
        for position, first in enumerate(indexes):
            for second in indexes[position + 1 :]:
                yield subs[first], subs[second]
    for index in every:
        for other in range(len(subs)):
            if other != index and (subs[other].team != "*" or other > index):
                pair = sorted((index, other))
                yield subs[pair[0]], subs[pair[1]]


def _can_meet(first: SubscriptionSpec, second: SubscriptionSpec) -> bool:
    outcomes = (first.outcomes, second.outcomes)
    if None not in outcomes and not set(first.outcomes or ()) & set(second.outcomes or ()):
        return False
    if not _severities(first) & _severities(second):
        return False
    return any(globs_overlap(a, b) for a in first.events for b in second.events)


def _severities(sub: SubscriptionSpec) -> frozenset[Severity]:
    try:
        kept = severity_set(sub.min_severity, sub.severities)
    except FilterError:  # cannot happen for a loaded subscription
        kept = None
    return frozenset(Severity) if kept is None else kept


def globs_overlap(first: str, second: str) -> bool:
    """Whether some event type matches both patterns (``*``: any run, ``?``: one character).

    A walk over pairs of positions, one in each pattern: a ``*`` may match
    nothing (move past it) or one more character (stay); the walk succeeds
    when both patterns can end together.
    """
    seen: set[tuple[int, int]] = set()
    todo = [(0, 0)]
    while todo:
        state = todo.pop()
        if state in seen:
            continue
        seen.add(state)
        left, right = state  # positions in first, in second
        if left == len(first) and right == len(second):
            return True
        if left < len(first) and first[left] == "*":
            todo.append((left + 1, right))
        if right < len(second) and second[right] == "*":
            todo.append((left, right + 1))
        if left < len(first) and right < len(second):
            here, there = first[left], second[right]
            if here == there or here in "*?" or there in "*?":
                todo.append(
                    (left if here == "*" else left + 1, right if there == "*" else right + 1)
                )
    return False
