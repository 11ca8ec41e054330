"""Matching events to subscriptions: pure code, indexed by event type.

Patterns are shell-style globs over the dotted type (``*`` matches any run of
characters, dots included; ``?`` one character): ``capsule.*`` matches
``capsule.create`` and ``capsule.state.changed``. A subscription's ``team``
is a team id or ``"*"`` for every team; ``outcomes`` omitted matches any.
Severity and ``where`` filters (``eventbus.filters``, compiled when the
subscription was loaded) run last, on those candidates only.

Exact patterns are looked up in a dict; the candidates for each event type
(exact + glob matches, split by team) are cached, so the cost per event
grows with the subscriptions of its type and team, not with all of them.
"""

from __future__ import annotations

import fnmatch
import re
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .catalog import Catalog
from .envelope import Event
from .filters import Filters
from .settings import SubscriptionSpec

__all__ = ["Matcher", "Selection"]

_CACHE_SIZE = 4096

# A candidate: the subscription, and its compiled filters (None: filters nothing).
_Candidate = tuple[SubscriptionSpec, Filters | None]


class Selection(NamedTuple):
    """What matching found: subscriptions that receive the event, and those filtered out.

    ``filtered`` holds (subscription, ``"severity"`` or ``"where"``) for each
    candidate that matched team, type and outcome but not its filters.
    """

    matched: list[SubscriptionSpec]
    filtered: list[tuple[SubscriptionSpec, str]]


@dataclass(frozen=True, slots=True)
class _TypeEntry:
    every: tuple[SubscriptionSpec, ...]  # every subscription of the type, any team
    any_team: tuple[_Candidate, ...]  # those with team "*"
    by_team: dict[str, tuple[_Candidate, ...]]  # a team's own and the "*" ones, in order


class Matcher:
    def __init__(self, subscriptions: Iterable[SubscriptionSpec], catalog: Catalog | None = None):
        self.catalog = catalog or Catalog()
        self._subs = [s for s in subscriptions if s.enabled]
        # Read once: a private attribute of a pydantic model is slow to reach.
        # Subscriptions with the same filters share one compiled copy (``_shared``).
        shared: dict[object, Filters] = {}
        self._candidates: list[_Candidate] = [(sub, _shared(sub, shared)) for sub in self._subs]
        self._exact: dict[str, list[int]] = defaultdict(list)
        # One compiled glob per distinct pattern, with the subscriptions using it.
        globs: dict[str, list[int]] = defaultdict(list)
        for index, sub in enumerate(self._subs):
            for pattern in dict.fromkeys(sub.events):
                if "*" in pattern or "?" in pattern:
                    globs[pattern].append(index)
                else:
                    self._exact[pattern].append(index)
        self._globs: list[tuple[re.Pattern[str], list[int]]] = [
            (re.compile(fnmatch.translate(pattern)), used) for pattern, used in globs.items()
        ]
        self._by_type: OrderedDict[str, _TypeEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._subs)

    def for_type(self, event_type: str) -> tuple[SubscriptionSpec, ...]:
        """Every enabled subscription whose patterns match ``event_type``."""
        return self._entry(event_type).every

    def _entry(self, event_type: str) -> _TypeEntry:
        cached = self._by_type.get(event_type)
        if cached is not None:
            self._by_type.move_to_end(event_type)
            return cached
        indexes: set[int] = set()
        if self.catalog.is_subscribable(event_type):
            indexes.update(self._exact.get(event_type, ()))
            for regex, used in self._globs:
                if regex.match(event_type):
                    indexes.update(used)
        entry = _split([self._candidates[i] for i in sorted(indexes)])
        self._by_type[event_type] = entry
        if len(self._by_type) > _CACHE_SIZE:
            self._by_type.popitem(last=False)
        return entry

    def select(self, event: Event) -> Selection:
        """The subscriptions that receive ``event``, and those its filters kept out."""
        entry = self._entry(event.event)
        candidates = entry.by_team.get(event.team_id, entry.any_team)
        outcome = event.outcome_name
        matched: list[SubscriptionSpec] = []
        filtered: list[tuple[SubscriptionSpec, str]] = []
        for sub, filters in candidates:
            if sub.outcomes is not None and outcome not in sub.outcomes:
                continue
            if filters is not None:
                reason = filters.rejects(event)
                if reason is not None:
                    filtered.append((sub, reason))
                    continue
            matched.append(sub)
        return Selection(matched, filtered)

    def match(self, event: Event) -> list[SubscriptionSpec]:
        """Subscriptions that receive ``event`` (type, team, outcome and filters all match)."""
        return self.select(event).matched

    def types_for(self, subscription: SubscriptionSpec, types: Sequence[str]) -> list[str]:
        """Which of ``types`` this subscription would receive (for ``config check``)."""
        return [t for t in types if subscription in self.for_type(t)]


def _shared(sub: SubscriptionSpec, seen: dict[object, Filters]) -> Filters | None:
    """``sub.filters``, or the copy compiled for an earlier subscription with the same ones.

    Teams copy one subscription: with 10,000 of them (10 shapes x 1,000
    teams) an event met its team's own compiled filters, cold in the CPU's
    caches, and cost 1.9-2.2x of 10 subscriptions; sharing them brought that
    to 1.0-1.6x. Filters are immutable and compiled from these three fields
    alone, so equal fields (types included) give equal filters.
    """
    filters = sub.filters
    if filters is None:
        return None
    try:
        key = (sub.min_severity, _frozen(sub.severities), _frozen(sub.where))
        return seen.setdefault(key, filters)
    except TypeError:  # a value that cannot be a key: keep its own
        return filters


def _frozen(value: object) -> object:
    """A hashable form of a YAML value that keeps types apart (``5`` is not ``"5"``)."""
    if isinstance(value, dict):
        return ("map", tuple((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return ("seq", tuple(_frozen(item) for item in value))
    return (type(value), value)


def _split(found: list[_Candidate]) -> _TypeEntry:
    """The candidates of one type by team, each in configuration order (one pass)."""
    any_team: list[_Candidate] = []
    by_team: dict[str, list[_Candidate]] = {}
    for candidate in found:
        team = candidate[0].team
        if team == "*":
            any_team.append(candidate)
            for candidates in by_team.values():
                candidates.append(candidate)
            continue
        own = by_team.get(team)
        if own is None:
            own = by_team[team] = list(any_team)  # the "*" ones before it
        own.append(candidate)
    return _TypeEntry(
        tuple(sub for sub, _ in found),
        tuple(any_team),
        {team: tuple(candidates) for team, candidates in by_team.items()},
    )
