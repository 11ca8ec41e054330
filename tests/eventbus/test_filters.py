"""Severity and ``where`` filters: every matcher, its negation, errors with their line."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from eventbus import filters as filters_module
from eventbus.config import load_settings
from eventbus.envelope import Event, Severity
from eventbus.errors import ConfigError
from eventbus.filters import Filters, as_text, severity_set
from eventbus.settings import SubscriptionSpec
from eventbus.subscriptions import Matcher


def spec(name: str = "s", team: str = "*", **kw: Any) -> SubscriptionSpec:
    return SubscriptionSpec(name=name, team=team, events=["*"], channels=["c"], **kw)


def event(**overrides: Any) -> Event:
    data: dict[str, Any] = {
        "event": "host.down",
        "outcome": "error",
        "team_id": "team-1",
        "error": "disk full on /var",
        "actor": {"type": "system", "id": "monitor"},
        "resource": {"type": "host", "id": "db-1"},
        "metadata": {"region": "eu-west", "host": "db-1", "version": "1.10", "flag": "true"},
    }
    data.update(overrides)
    if data["outcome"] != "error":
        data.pop("error")  # only an error outcome has one
    return Event.model_validate(data)


# -- severity ---------------------------------------------------------------------------

SEVERITY_ORDER = ["debug", "info", "warning", "error", "critical"]


@pytest.mark.parametrize("minimum", SEVERITY_ORDER)
@pytest.mark.parametrize("level", SEVERITY_ORDER)
def test_min_severity_keeps_that_level_and_above(minimum: str, level: str) -> None:
    sub = spec(min_severity=minimum)
    kept = sub.filters is None or sub.filters.rejects(event(severity=level)) is None
    assert kept is (SEVERITY_ORDER.index(level) >= SEVERITY_ORDER.index(minimum))


@pytest.mark.parametrize(
    ("overrides", "effective"),
    [
        pytest.param({"outcome": "error"}, "error", id="error-outcome-is-error"),
        pytest.param({"outcome": "success"}, "info", id="success-is-info"),
        pytest.param({"outcome": None}, "info", id="no-outcome-is-info"),
        pytest.param({"outcome": "error", "severity": "debug"}, "debug", id="given-wins"),
    ],
)
def test_the_effective_severity_is_filtered(overrides: dict[str, Any], effective: str) -> None:
    for level in SEVERITY_ORDER:
        sub = spec(severities=[level])
        assert sub.filters is not None
        rejected = sub.filters.rejects(event(**overrides))
        assert (rejected is None) is (level == effective)
        assert rejected in (None, "severity")


def test_severities_is_an_exact_set() -> None:
    assert severity_set(None, [Severity.CRITICAL, Severity.DEBUG]) == {"critical", "debug"}
    assert severity_set(Severity.WARNING, None) == {"warning", "error", "critical"}
    assert severity_set(Severity.DEBUG, None) is None, "debug and above: nothing to filter"
    assert severity_set(None, None) is None
    assert spec().filters is None, "no filter: the matcher's fast path"


# -- where: every matcher, and not of each ----------------------------------------------

MATCHERS = [
    # (where, holds for event(), holds for an event without the value)
    pytest.param({"metadata.region": "eu-west"}, True, False, id="equals"),
    pytest.param({"metadata.region": "eu-north"}, False, False, id="equals-other"),
    pytest.param({"metadata.region": ["eu-north", "eu-west"]}, True, False, id="any-of"),
    pytest.param({"metadata.region": ["us-east", "ap-south"]}, False, False, id="any-of-none"),
    pytest.param(
        {"metadata.region": ["us-east", {"glob": "eu-*"}]}, True, False, id="any-of-a-matcher"
    ),
    pytest.param({"metadata.host": {"glob": "db-*"}}, True, False, id="glob"),
    pytest.param({"metadata.host": {"glob": "db"}}, False, False, id="glob-is-whole-value"),
    pytest.param({"error": {"regex": "disk|quota"}}, True, False, id="regex-searches"),
    pytest.param({"error": {"regex": "^disk full$"}}, False, False, id="regex-anchored"),
    pytest.param({"metadata.region": {"exists": True}}, True, False, id="exists"),
    pytest.param({"metadata.region": {"exists": False}}, False, True, id="exists-false"),
    pytest.param(
        {"metadata.host": {"glob": "db-*", "regex": "-1$"}}, True, False, id="mapping-is-and"
    ),
    pytest.param(
        {"metadata.host": {"glob": "db-*", "regex": "-2$"}}, False, False, id="mapping-and-fails"
    ),
    pytest.param({"severity": "error", "resource.type": "host"}, True, False, id="and-of-keys"),
    pytest.param({"severity": "error", "resource.type": "vm"}, False, False, id="and-one-fails"),
    pytest.param({"actor.type": "system", "actor.id": "monitor"}, True, False, id="actor"),
    pytest.param({"team_id": "team-1", "event": "host.down"}, True, False, id="team-event"),
    pytest.param({"outcome": "error", "team": "team-1"}, True, False, id="outcome-team"),
    pytest.param({"resource.id": "db-1"}, True, False, id="resource-id"),
]


def _holds(where: dict[str, Any], ev: Event) -> bool:
    sub = spec(where=where)
    assert sub.filters is not None
    reason = sub.filters.rejects(ev)
    assert reason in (None, "where")
    return reason is None


def _without_values(where: dict[str, Any]) -> Event:
    """An event where every path of ``where`` that can be absent is absent."""
    ev = event()
    keys = {path.removeprefix("metadata.") for path in where if path.startswith("metadata.")}
    update: dict[str, Any] = {"metadata": {k: v for k, v in ev.metadata.items() if k not in keys}}
    if "error" in where:
        update["error"] = None
    return ev.model_copy(update=update)


@pytest.mark.parametrize(("where", "present", "absent"), MATCHERS)
def test_each_matcher(where: dict[str, Any], present: bool, absent: bool) -> None:
    assert _holds(where, event()) is present
    can_be_absent = all(p.startswith("metadata.") or p == "error" for p in where)
    if can_be_absent:
        assert _holds(where, _without_values(where)) is absent


@pytest.mark.parametrize(("where", "present", "absent"), MATCHERS)
def test_not_of_each_matcher(where: dict[str, Any], present: bool, absent: bool) -> None:
    negated = {path: {"not": matcher} for path, matcher in where.items()}
    if len(where) == 1:
        assert _holds(negated, event()) is not present
        if all(p.startswith("metadata.") or p == "error" for p in where):
            assert _holds(negated, _without_values(where)) is not absent
    else:  # AND of negations: holds only when every one fails
        assert _holds(negated, event()) is not any(
            _holds({path: matcher}, event()) for path, matcher in where.items()
        )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(True, "true", id="true"),
        pytest.param(False, "false", id="false"),
        pytest.param(5, "5", id="int"),
        pytest.param(1.5, "1.5", id="float"),
        pytest.param("x", "x", id="str"),
        pytest.param(None, None, id="none"),
        pytest.param([1], None, id="list"),
    ],
)
def test_scalars_are_compared_as_text(value: Any, text: str | None) -> None:
    assert as_text(value) == text


def test_true_in_python_matches_the_text_true() -> None:
    assert _holds({"metadata.flag": True}, event())
    assert not _holds({"metadata.flag": False}, event())


def write(tmp_path: Path, where_yaml: str, **extra: str) -> Path:
    lines = "".join(f"    {key}: {value}\n" for key, value in extra.items())
    text = (
        "channels:\n  - name: c\n    type: console\n"
        "subscriptions:\n  - name: s\n    team: '*'\n    events: ['*']\n    channels: [c]\n"
        + lines
        + "    where:\n"
        + textwrap.indent(textwrap.dedent(where_yaml), "      ")
    )
    path = tmp_path / "eventbus.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("yaml_value", "matches", "fails"),
    [
        pytest.param("1.10", "1.10", "1.1", id="float-as-written"),
        pytest.param("007", "007", "7", id="octal-looking"),
        pytest.param("yes", "yes", "true", id="yes-is-not-true"),
        pytest.param("true", "true", "True", id="true"),
        pytest.param("2024-01-02", "2024-01-02", "other", id="date"),
        pytest.param("[1.10, 2.0]", "2.0", "2", id="list-items"),
        pytest.param("{not: 1.10}", "1.1", "1.10", id="under-not"),
        pytest.param("{glob: 1.10}", "1.10", "1.1", id="glob-operand"),
    ],
)
def test_yaml_values_keep_their_written_text(
    tmp_path: Path, yaml_value: str, matches: str, fails: str
) -> None:
    settings = load_settings(write(tmp_path, f"metadata.version: {yaml_value}\n"), environ={})
    (sub,) = settings.subscriptions
    assert sub.filters is not None
    assert sub.filters.rejects(event(metadata={"version": matches})) is None
    assert sub.filters.rejects(event(metadata={"version": fails})) == "where"


def test_exists_keeps_its_yaml_boolean(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "metadata.canary: {exists: no}\n"), environ={})
    (sub,) = settings.subscriptions
    assert sub.filters is not None
    assert sub.filters.rejects(event()) is None
    assert sub.filters.rejects(event(metadata={"canary": "1"})) == "where"


# -- invalid filters: each a config problem naming its line ------------------------------

INVALID = [
    # (where YAML, the line of the problem inside it (1 = its first line), text in it)
    pytest.param("metadta.region: x\n", 1, "did you mean", id="unknown-path"),
    pytest.param("resource.kind: x\n", 1, "unknown path 'resource.kind'", id="unknown-path-2"),
    pytest.param("error: {regexp: x}\n", 1, "unknown matcher 'regexp'", id="unknown-matcher"),
    pytest.param("error:\n  regex: '(disk'\n", 2, "missing )", id="bad-regex"),
    pytest.param("error: {regex: '(?=x)'}\n", 1, "RE2 syntax", id="look-ahead"),
    pytest.param("error: {regex: ''}\n", 1, "non-empty", id="empty-regex"),
    pytest.param("error: {glob: ''}\n", 1, "non-empty", id="empty-glob"),
    pytest.param("error: {glob: [a]}\n", 1, "must be a non-empty string", id="glob-list"),
    pytest.param("error:\n  exists: maybe\n", 2, "true or false", id="exists-not-bool"),
    pytest.param("error: {}\n", 1, "an empty matcher", id="empty-mapping"),
    pytest.param("error: []\n", 1, "an empty list", id="empty-list"),
    pytest.param("error:\n", 1, "exists: false", id="null"),
    pytest.param("error:\n  - a\n  - [b]\n", 3, "a list inside a list", id="nested-list"),
    pytest.param("error:\n  not:\n    glb: x\n", 3, "unknown matcher 'glb'", id="inside-not"),
    pytest.param(
        "error: x\nmetadata.a:\n  - ok\n  - {regex: '['}\n", 4, "missing ]", id="list-item-line"
    ),
]


@pytest.mark.parametrize(("where_yaml", "line", "text"), INVALID)
def test_invalid_filters_name_their_line(
    tmp_path: Path, where_yaml: str, line: int, text: str
) -> None:
    path = write(tmp_path, where_yaml)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    (problem,) = info.value.problems
    where_line = 9  # the line of "where:" in write()'s file
    assert problem.where == f"{path}:{where_line + line}", problem
    assert text in problem.message
    assert "(got None)" not in problem.message


def test_min_severity_and_severities_together_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "error: x\n", min_severity="error", severities="[critical]")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    (problem,) = info.value.problems
    assert problem.where == f"{path}:10"  # severities:
    assert "both set" in problem.message


def test_every_filter_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "bogus: x\nerror: {regex: '('}\nmetadata.a: {nope: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert [p.where for p in info.value.problems] == [f"{path}:{n}" for n in (10, 11, 12)]


def test_where_problems_come_with_the_subscriptions_other_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "error: {regex: '('}\n", retry="[soon]")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert [p.where for p in info.value.problems] == [f"{path}:9", f"{path}:11"]
    assert "retry" in info.value.problems[0].message
    assert "missing )" in info.value.problems[1].message


def test_bad_severity_name_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "error: x\n", min_severity="fatal")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert "min_severity" in str(info.value) and "critical" in str(info.value)


# -- compiled once, applied to candidates only --------------------------------------------


def test_patterns_are_compiled_once_not_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = filters_module.compile_regex

    def counting(pattern: str) -> Any:
        calls.append(pattern)
        return real(pattern)

    monkeypatch.setattr(filters_module, "compile_regex", counting)
    pattern = f"disk-{id(calls)}"  # compiled patterns are shared per process: a new one
    sub = spec(where={"error": {"regex": pattern}})
    assert calls == [pattern]
    assert spec(name="copy", where={"error": {"regex": pattern}}).filters is not None
    assert calls == [pattern], "a second subscription with the same pattern shares it"
    matcher = Matcher([sub])
    for _ in range(100):
        assert matcher.match(event(error=f"{pattern} full")) == [sub]
    Matcher([sub])  # a reload with the same subscriptions
    assert calls == [pattern]


def test_select_reports_what_was_filtered_and_why() -> None:
    subs = [
        spec("plain"),
        spec("pager", min_severity="critical"),
        spec("eu", where={"metadata.region": "eu-west"}),
        spec("us", where={"metadata.region": "us-east"}),
        spec("other-team", team="team-2", min_severity="critical"),
    ]
    selection = Matcher(subs).select(event())
    assert [s.name for s in selection.matched] == ["plain", "eu"]
    assert [(s.name, why) for s, why in selection.filtered] == [
        ("pager", "severity"),
        ("us", "where"),
    ], "another team's subscription is not a candidate, so not 'filtered'"


def test_filters_run_on_candidates_only() -> None:
    runs: list[str] = []

    def check(ev: Event) -> bool:
        runs.append(ev.event)
        return False

    sub = SubscriptionSpec(
        name="s", team="team-1", events=["host.*"], outcomes=["error"], channels=["c"]
    )
    sub._filters = Filters(None, (check,))
    matcher = Matcher([sub])
    for ev in (
        event(event="capsule.create"),  # another type
        event(team_id="team-2"),  # another team
        event(outcome="success"),  # another outcome
    ):
        assert matcher.select(ev) == ([], [])
    assert runs == []
    assert matcher.select(event()) == ([], [(sub, "where")])
    assert runs == ["host.down"]


def test_candidates_keep_file_order_across_teams() -> None:
    subs = [
        spec("a", team="team-1"),
        spec("b"),
        spec("c", team="team-2"),
        spec("d", team="team-1"),
        spec("e"),
    ]
    matcher = Matcher(subs)
    assert [s.name for s in matcher.match(event())] == ["a", "b", "d", "e"]
    assert [s.name for s in matcher.match(event(team_id="team-2"))] == ["b", "c", "e"]
    assert [s.name for s in matcher.match(event(team_id="team-3"))] == ["b", "e"]


# -- the example configuration and the JSON Schema ----------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_the_commented_routing_example_is_valid(tmp_path: Path) -> None:
    lines = (ROOT / "config" / "eventbus.example.yaml").read_text().splitlines()
    start = lines.index("  # - name: db-host-errors")
    end = start + 1
    while end < len(lines) and lines[end].startswith("  #   "):
        end += 1
    block = [line.replace("  # ", "  ", 1) for line in lines[start:end]]
    assert len(block) >= 10, "the whole block, up to its channels"
    path = tmp_path / "example.yaml"
    path.write_text("\n".join([*lines, *block]) + "\n")
    settings = load_settings(path, environ={})
    sub = settings.subscriptions[-1]
    assert sub.name == "db-host-errors" and sub.filters is not None
    kept = event(metadata={"region": "eu-west", "host": "db-7"}, severity="critical")
    assert sub.filters.rejects(kept) is None
    assert sub.filters.rejects(event(metadata={"region": "eu-west", "host": "web-1"})) == "where"
    assert sub.filters.rejects(event(severity="warning")) == "severity"


def test_the_schema_describes_where_matchers() -> None:
    from eventbus.schema import config_schema

    defs = config_schema()["$defs"]
    where = defs["SubscriptionSpec"]["properties"]["where"]
    (mapping,) = [s for s in where["anyOf"] if s.get("type") == "object"]
    assert mapping["additionalProperties"] == {"$ref": "#/$defs/WhereMatcher"}
    assert "metadata" in mapping["propertyNames"]["pattern"]
    operators = next(s for s in defs["WhereMatcher"]["anyOf"] if s.get("type") == "object")
    assert set(operators["properties"]) == {"glob", "regex", "exists", "not"}
    for key in ("min_severity", "severities", "cooldown", "group_by", "group_wait"):
        assert key in defs["SubscriptionSpec"]["properties"]
