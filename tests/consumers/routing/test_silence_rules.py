"""Silence matchers as tables: every operator, globs, regexes, absent values, errors."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.routing.silence_rules import (
    MAX_MATCHERS,
    MatchOp,
    matches_all,
    new_silence,
    parse_matcher,
    parse_matchers,
)
from consumers.store.silences import SilenceError
from eventbus.envelope import Event


def host_down(**overrides: Any) -> Event:
    data: dict[str, Any] = {
        "event": "host.down",
        "outcome": "error",
        "team_id": "team-1",
        "actor": {"type": "system"},
        "resource": {"type": "host", "id": "db-1"},
        "metadata": {"region": "eu-west"},
        "error": "disk full on /var",
    }
    data.update(overrides)
    return Event.model_validate(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("event=host.down", True, id="equals"),
        pytest.param("event=host.up", False, id="equals-other"),
        pytest.param("event=host.*", True, id="glob"),
        pytest.param("event=backup.*", False, id="glob-other"),
        pytest.param("event=host", False, id="equals-is-whole-value"),
        pytest.param("event!=host.up", True, id="not-equals"),
        pytest.param("event!=host.down", False, id="not-equals-same"),
        pytest.param("event!=host.*", False, id="not-glob"),
        pytest.param("error=~disk|quota", True, id="regex-searches"),
        pytest.param("error=~^full", False, id="regex-anchored"),
        pytest.param("error!~quota", True, id="not-regex"),
        pytest.param("metadata.region=eu-west", True, id="metadata"),
        pytest.param("metadata.region=eu-*", True, id="metadata-glob"),
        pytest.param("metadata.zone=a", False, id="absent-never-equals"),
        pytest.param("metadata.zone!=a", True, id="absent-is-not-equal"),
        pytest.param("metadata.zone=~.", False, id="absent-never-regex"),
        pytest.param("metadata.zone=", True, id="empty-means-absent"),
        pytest.param("metadata.region=", False, id="empty-present"),
        pytest.param("metadata.region!=", True, id="not-empty-means-present"),
        pytest.param("severity=error", True, id="effective-severity"),
        pytest.param("team=team-1", True, id="team-alias"),
        pytest.param("resource=host:db-1", True, id="resource-type-id"),
        pytest.param("actor.type=system", True, id="actor"),
        pytest.param("  outcome = error ", True, id="spaces-around"),
    ],
)
def test_matcher(text: str, expected: bool) -> None:
    assert parse_matcher(text).matches(host_down()) is expected


@pytest.mark.parametrize(
    ("text", "path", "op", "value"),
    [
        pytest.param("event=host.*", "event", MatchOp.EQUAL, "host.*", id="equals"),
        pytest.param("metadata.k=x=y", "metadata.k", MatchOp.EQUAL, "x=y", id="equals-in-value"),
        pytest.param("error=~a=b", "error", MatchOp.REGEX, "a=b", id="regex"),
        pytest.param("error!~a", "error", MatchOp.NOT_REGEX, "a", id="not-regex"),
        pytest.param("event!=x", "event", MatchOp.NOT_EQUAL, "x", id="not-equals"),
    ],
)
def test_parse_parts_and_canonical_text(text: str, path: str, op: MatchOp, value: str) -> None:
    matcher = parse_matcher(text)
    assert (matcher.path, matcher.op, matcher.value) == (path, op, value)
    assert str(parse_matcher(str(matcher))) == str(matcher)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("event", "is not PATH OP VALUE", id="no-operator"),
        pytest.param("=host.down", "is not PATH OP VALUE", id="no-path"),
        pytest.param("evnt=host.down", "did you mean 'event'", id="unknown-path"),
        pytest.param("metadata.=x", "unknown path", id="empty-metadata-key"),
        pytest.param("error=~(a", "not valid", id="bad-regex"),
        pytest.param("error=~(?=a)", "look-around", id="re2-refuses"),
        pytest.param("error=~", "regex is empty", id="empty-regex"),
    ],
)
def test_bad_matchers_say_which_and_why(text: str, says: str) -> None:
    with pytest.raises(SilenceError, match="matcher") as info:
        parse_matcher(text)
    assert says in str(info.value)
    assert repr(text[:80]) in str(info.value) or text in str(info.value)


def test_parse_matchers_lists_every_bad_one() -> None:
    with pytest.raises(SilenceError) as info:
        parse_matchers(["event=host.*", "evnt=x", "error=~(a"])
    assert len(info.value.problems) == 2
    assert "'evnt=x'" in info.value.problems[0]
    assert "'error=~(a'" in info.value.problems[1]


def test_parse_matchers_needs_one_and_caps() -> None:
    with pytest.raises(SilenceError, match="at least one matcher"):
        parse_matchers([])
    with pytest.raises(SilenceError, match="limit"):
        parse_matchers(["event=x"] * (MAX_MATCHERS + 1))


def test_every_matcher_must_match() -> None:
    matchers = parse_matchers(["event=host.*", "metadata.region=eu-west"])
    assert matches_all(matchers, host_down())
    assert not matches_all(matchers, host_down(metadata={"region": "us-east"}))


def test_new_silence_checks_every_field_at_once() -> None:
    with pytest.raises(SilenceError) as info:
        new_silence(team="*", matchers=["nope"], duration=0, comment=" ", created_by="", now=1000.0)
    problems = " | ".join(info.value.problems)
    for part in ("team", "matcher 'nope'", "duration", "comment", "created_by"):
        assert part in problems


def test_new_silence() -> None:
    silence = new_silence(
        team="team-1",
        matchers=["event = host.*"],
        duration=7200,
        comment=" maintenance ",
        created_by="alice",
        now=1_800_000_000.0,
    )
    assert silence.matchers == ("event=host.*",), "kept in canonical form"
    assert silence.ends_at - silence.starts_at == 7200
    assert silence.comment == "maintenance"
    assert len(silence.id) == 26
    assert silence.active(1_800_000_000.0) and not silence.active(1_800_007_200.0)
