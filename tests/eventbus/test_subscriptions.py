"""The matcher: which subscriptions receive an event."""

from __future__ import annotations

import re
from typing import Any

import pytest

from eventbus import subscriptions as subscriptions_module
from eventbus.catalog import Catalog
from eventbus.envelope import Event
from eventbus.settings import SubscriptionSpec
from eventbus.subscriptions import Matcher


def sub(name: str, events: list[str], team: str = "*", **kw: Any) -> SubscriptionSpec:
    return SubscriptionSpec(name=name, team=team, events=events, channels=["c"], **kw)


def event(event_type: str, team: str = "team-1", outcome: str | None = None) -> Event:
    return Event(
        event=event_type,
        team_id=team,
        outcome=outcome,
        resource={"id": "r1", "type": "capsule"},
    )


SUBS = [
    sub("exact", ["capsule.create"]),
    sub("capsule-glob", ["capsule.*"]),
    sub("everything", ["*"]),
    sub("question", ["host.u?"]),
    sub("team-1-only", ["host.down"], team="team-1"),
    sub("errors", ["capsule.*"], outcomes=["error"]),
    sub("successes", ["capsule.create"], outcomes=["success"]),
    sub("no-outcome", ["host.*"], outcomes=["none"]),
    sub("error-or-none", ["host.down"], outcomes=["error", "none"]),
    sub("disabled", ["*"], enabled=False),
    sub("transient-glob", ["capsule.state.*"]),
    sub("two-patterns", ["host.down", "template.snapshot.*"]),
    sub("dup-patterns", ["host.up", "host.up", "host.*"]),
]


@pytest.mark.parametrize(
    ("ev", "expected"),
    [
        pytest.param(
            event("capsule.create"), {"exact", "capsule-glob", "everything"}, id="no-outcome-exact"
        ),
        pytest.param(
            event("capsule.create", outcome="success"),
            {"exact", "capsule-glob", "everything", "successes"},
            id="success",
        ),
        pytest.param(
            event("capsule.create", outcome="error"),
            {"exact", "capsule-glob", "everything", "errors"},
            id="error",
        ),
        pytest.param(
            event("host.up"),
            {"everything", "question", "no-outcome", "dup-patterns"},
            id="question-mark",
        ),
        pytest.param(event("host.uptime"), {"everything", "no-outcome", "dup-patterns"}, id="q-1"),
        pytest.param(
            event("host.down", team="team-1"),
            {"everything", "team-1-only", "no-outcome", "error-or-none", "two-patterns"}
            | {"dup-patterns"},
            id="team-match",
        ),
        pytest.param(
            event("host.down", team="team-2"),
            {"everything", "no-outcome", "error-or-none", "two-patterns", "dup-patterns"},
            id="other-team",
        ),
        pytest.param(
            event("host.down", outcome="success"),
            {"everything", "team-1-only", "two-patterns", "dup-patterns"},
            id="outcome-filters",
        ),
        pytest.param(
            event("template.snapshot.create"), {"everything", "two-patterns"}, id="deep-glob"
        ),
        pytest.param(event("capsule.state.changed"), set(), id="transient-never"),
        pytest.param(event("billing.invoice.paid"), {"everything"}, id="unknown-type-not-strict"),
        pytest.param(event("capsulex.create"), {"everything"}, id="glob-needs-the-dot"),
    ],
)
def test_matching(ev: Event, expected: set[str]) -> None:
    matcher = Matcher(SUBS)
    assert {s.name for s in matcher.match(ev)} == expected
    # the result does not change once cached
    assert {s.name for s in matcher.match(ev)} == expected


def test_disabled_subscriptions_are_dropped() -> None:
    matcher = Matcher(SUBS)
    assert len(matcher) == len(SUBS) - 1
    assert all(s.name != "disabled" for s in matcher.for_type("capsule.create"))


def test_results_keep_configuration_order_and_no_duplicates() -> None:
    matcher = Matcher(SUBS)
    found = matcher.for_type("host.up")
    names = [s.name for s in found]
    assert names == sorted(names, key=[s.name for s in SUBS].index)
    assert len(names) == len(set(names))


def test_transient_types_never_match_even_an_exact_subscription() -> None:
    catalog = Catalog({"capsule.metrics": "transient"})
    matcher = Matcher([sub("exact", ["capsule.metrics"]), sub("all", ["*"])], catalog)
    assert matcher.for_type("capsule.metrics") == ()
    assert matcher.match(event("capsule.metrics")) == []
    assert [s.name for s in matcher.for_type("capsule.create")] == ["all"]


def test_strict_catalog_drops_unknown_types() -> None:
    subs = [sub("all", ["*"]), sub("exact", ["billing.invoice.paid"])]
    strict = Matcher(subs, Catalog(strict=True))
    assert strict.match(event("billing.invoice.paid")) == []
    assert [s.name for s in strict.match(event("host.down"))] == ["all"]
    declared = Matcher(subs, Catalog({"billing.invoice.paid": "durable"}, strict=True))
    assert [s.name for s in declared.match(event("billing.invoice.paid"))] == ["all", "exact"]
    lenient = Matcher(subs)
    assert [s.name for s in lenient.match(event("billing.invoice.paid"))] == ["all", "exact"]


def test_types_for_lists_what_a_subscription_receives() -> None:
    matcher = Matcher(SUBS)
    types = sorted(Catalog().types)
    capsule = next(s for s in SUBS if s.name == "capsule-glob")
    assert matcher.types_for(capsule, types) == [
        "capsule.create",
        "capsule.destroy",
        "capsule.pause",
        "capsule.resume",
    ]


class _CountingPattern:
    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.calls = 0

    def match(self, text: str) -> re.Match[str] | None:
        self.calls += 1
        return self.pattern.match(text)


def test_exact_types_do_not_scan_all_subscriptions() -> None:
    subs = [sub(f"s{i}", [f"type{i}.happened"]) for i in range(10_000)]
    subs += [sub("glob-a", ["capsule.*"]), sub("glob-b", ["type1*.happened"])]
    matcher = Matcher(subs)
    counters = [(_CountingPattern(p), i) for p, i in matcher._globs]
    matcher._globs = counters  # type: ignore[assignment]

    def evaluations() -> int:
        return sum(c.calls for c, _ in counters)

    found = matcher.for_type("type5.happened")
    assert [s.name for s in found] == ["s5"]
    # one evaluation per glob, none per exact subscription
    assert evaluations() == 2
    assert matcher.for_type("type5.happened") is found  # cached: no new work
    assert evaluations() == 2
    found = matcher.for_type("type12.happened")
    assert [s.name for s in found] == ["s12", "glob-b"]
    assert evaluations() == 4
    for i in range(100, 200):
        matcher.match(event(f"type{i}.happened"))
        matcher.match(event(f"type{i}.happened", outcome="error"))
    assert evaluations() == 4 + 2 * 100


def test_per_type_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subscriptions_module, "_CACHE_SIZE", 10)
    matcher = Matcher([sub("all", ["*"])])
    for i in range(50):
        assert len(matcher.for_type(f"t{i}.x")) == 1
    assert len(matcher._by_type) == 10


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("Capsule.*", id="uppercase"),
        pytest.param("capsule.[ab]", id="brackets"),
        pytest.param("capsule..create", id="empty-segment"),
        pytest.param("capsule.*\n", id="trailing-newline"),
        pytest.param("", id="empty"),
        pytest.param("capsule create", id="space"),
    ],
)
def test_bad_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(ValueError, match="is not valid: use dotted lowercase names"):
        sub("s", [pattern])


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("*", id="star"),
        pytest.param("capsule.*", id="prefix"),
        pytest.param("*.create", id="suffix"),
        pytest.param("host.u?", id="question"),
        pytest.param("host", id="single-segment"),
    ],
)
def test_good_patterns_are_accepted(pattern: str) -> None:
    assert sub("s", [pattern]).events == [pattern]


def test_subscriptions_with_equal_filters_share_one_compiled_copy() -> None:
    where = {"metadata.region": ["eu-west-1", "eu-north-1"], "error": {"regex": "disk"}}
    teams = [sub(f"s{n}", ["*"], team=f"t{n}", where=where, min_severity="info") for n in range(3)]
    other = sub("five", ["*"], team="t0", where={"metadata.n": 5})
    text = sub("text", ["*"], team="t0", where={"metadata.n": "5"})
    plain = sub("plain", ["*"], team="t0")
    matcher = Matcher([*teams, other, text, plain])
    compiled = {spec.name: filters for spec, filters in matcher._candidates}
    assert compiled["s0"] is compiled["s1"] is compiled["s2"] is teams[0].filters
    assert compiled["five"] is other.filters and compiled["text"] is text.filters
    assert compiled["plain"] is None
    hit = event("host.down", team="t1").model_copy(
        update={"error": "disk full", "metadata": {"region": "eu-west-1", "n": "5"}}
    )
    assert [s.name for s in matcher.match(hit)] == ["s1"]
    missed = hit.model_copy(update={"error": "quota"})
    assert matcher.select(missed).filtered == [(teams[1], "where")]
