"""Matching events to subscriptions: pure code, indexed by event type.

Patterns are shell-style globs over the dotted type (``*`` matches any run of
characters, dots included; ``?`` one character): ``capsule.*`` matches
``capsule.create`` and ``capsule.state.changed``. A subscription's ``team``
is a team id or ``"*"`` for every team; ``outcomes`` omitted matches any.

Exact patterns are looked up in a dict; the result for each event type
(exact + glob matches) is cached, so the cost per event does not grow with
the number of subscriptions for other types.
"""

from __future__ import annotations

import fnmatch
import re
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence

from .catalog import Catalog
from .envelope import Event
from .settings import SubscriptionSpec

__all__ = ["Matcher"]

_CACHE_SIZE = 4096


class Matcher:
    def __init__(self, subscriptions: Iterable[SubscriptionSpec], catalog: Catalog | None = None):
        self.catalog = catalog or Catalog()
        self._subs = [s for s in subscriptions if s.enabled]
        self._exact: dict[str, list[int]] = defaultdict(list)
        self._globs: list[tuple[re.Pattern[str], int]] = []
        for index, sub in enumerate(self._subs):
            for pattern in dict.fromkeys(sub.events):
                if "*" in pattern or "?" in pattern:
                    self._globs.append((re.compile(fnmatch.translate(pattern)), index))
                else:
                    self._exact[pattern].append(index)
        self._by_type: OrderedDict[str, tuple[SubscriptionSpec, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._subs)

    def for_type(self, event_type: str) -> tuple[SubscriptionSpec, ...]:
        """Every enabled subscription whose patterns match ``event_type``."""
        cached = self._by_type.get(event_type)
        if cached is not None:
            self._by_type.move_to_end(event_type)
            return cached
        if not self.catalog.is_subscribable(event_type):
            found: tuple[SubscriptionSpec, ...] = ()
        else:
            indexes = set(self._exact.get(event_type, ()))
            indexes.update(i for regex, i in self._globs if regex.match(event_type))
            found = tuple(self._subs[i] for i in sorted(indexes))
        self._by_type[event_type] = found
        if len(self._by_type) > _CACHE_SIZE:
            self._by_type.popitem(last=False)
        return found

    def match(self, event: Event) -> list[SubscriptionSpec]:
        """Subscriptions that receive ``event`` (type, team and outcome all match)."""
        outcome = event.outcome_name
        return [
            sub
            for sub in self.for_type(event.event)
            if (sub.team == "*" or sub.team == event.team_id)
            and (sub.outcomes is None or outcome in sub.outcomes)
        ]

    def types_for(self, subscription: SubscriptionSpec, types: Sequence[str]) -> list[str]:
        """Which of ``types`` this subscription would receive (for ``config check``)."""
        return [t for t in types if subscription in self.for_type(t)]
