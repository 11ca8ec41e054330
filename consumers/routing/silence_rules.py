"""Silence matchers: ``path=value``, ``path!=value``, ``path=~regex``, ``path!~regex``.

Pure parsing and matching, no I/O. Paths are those of ``where`` filters
(``eventbus.paths``). A value holding ``*`` is a glob over the whole value, as
in event patterns (``event=host.*`` matches ``host.down``). An empty value
stands for "absent": ``metadata.canary=`` matches events without that key
(or with it empty), ``metadata.canary!=`` those that carry it. A path that is
absent from an event never matches ``=``/``=~`` and always matches
``!=``/``!~``. Regexes are RE2 (``eventbus.patterns``), searched anywhere in
the value unless anchored.

A silence matches an event when every one of its matchers does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ulid import ULID

from eventbus.durations import format_duration
from eventbus.envelope import Event
from eventbus.paths import PathError, Reader, reader
from eventbus.patterns import PatternError, Search, compile_glob, compile_regex

from ..store.silences import Silence, SilenceError

__all__ = [
    "MAX_COMMENT",
    "MAX_DURATION",
    "MAX_MATCHERS",
    "MatchOp",
    "SilenceMatcher",
    "SilenceRuleError",
    "matches_all",
    "new_silence",
    "parse_matcher",
    "parse_matchers",
]

MAX_MATCHERS = 32
MAX_COMMENT = 1000
MAX_DURATION = 366 * 86400.0
_SYNTAX = re.compile(r"\s*(?P<path>[^=!~\s]+)\s*(?P<op>!=|=~|!~|=)(?P<value>.*)", re.S)
_HOW = "write PATH=VALUE, PATH!=VALUE, PATH=~REGEX or PATH!~REGEX, e.g. event=host.*"
_TEAM = re.compile(r"[^\s*]{1,128}")


class SilenceRuleError(SilenceError):
    """A matcher that cannot be used; the message names it, says why and how to fix it."""

    def __init__(self, problem: str) -> None:
        super().__init__([problem])


class MatchOp(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"

    @property
    def negated(self) -> bool:
        return self in (MatchOp.NOT_EQUAL, MatchOp.NOT_REGEX)


@dataclass(frozen=True, slots=True)
class SilenceMatcher:
    """One parsed matcher; ``str()`` gives back its canonical text."""

    path: str
    op: MatchOp
    value: str
    _read: Reader = field(repr=False, compare=False)
    _pattern: Search | None = field(repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.path}{self.op.value}{self.value}"

    def matches(self, event: Event) -> bool:
        found = self._read(event)
        if self._pattern is not None:
            hit = found is not None and (
                self._pattern.search(found) is not None
                if self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX)
                else self._pattern.fullmatch(found) is not None
            )
        elif self.value == "":
            hit = not found
        else:
            hit = found == self.value
        return hit != self.op.negated


def parse_matcher(text: str) -> SilenceMatcher:
    """``text`` parsed and compiled; ``SilenceRuleError`` says what is wrong and how to fix it."""
    if not isinstance(text, str):
        raise SilenceRuleError(f"matcher {text!r} must be a string: {_HOW}")
    found = _SYNTAX.fullmatch(text)
    if found is None:
        raise SilenceRuleError(f"matcher {text[:80]!r} is not PATH OP VALUE: {_HOW}")
    path, op, value = found["path"], MatchOp(found["op"]), found["value"].strip()
    try:
        read = reader(path)
    except PathError as exc:
        raise SilenceRuleError(f"matcher {text[:80]!r}: {exc}") from None
    pattern: Search | None = None
    try:
        if op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            if not value:
                raise PatternError("the regex is empty; to match an absent value use PATH=")
            pattern = compile_regex(value)
        elif "*" in value:
            pattern = compile_glob(value)
    except PatternError as exc:
        raise SilenceRuleError(f"matcher {text[:80]!r}: {exc}") from None
    return SilenceMatcher(path, op, value, read, pattern)


def parse_matchers(texts: Iterable[str]) -> tuple[SilenceMatcher, ...]:
    """Every matcher of a silence; one error listing every bad one (at least one is needed)."""
    parsed: list[SilenceMatcher] = []
    problems: list[str] = []
    for text in texts:
        try:
            parsed.append(parse_matcher(text))
        except SilenceRuleError as exc:
            problems.append(str(exc))
    if problems:
        raise SilenceError(problems)
    if not parsed:
        raise SilenceRuleError(f"a silence needs at least one matcher: {_HOW}")
    if len(parsed) > MAX_MATCHERS:
        raise SilenceRuleError(
            f"a silence has {len(parsed)} matchers, more than the limit of {MAX_MATCHERS}"
        )
    return tuple(parsed)


def matches_all(matchers: Sequence[SilenceMatcher], event: Event) -> bool:
    return all(matcher.matches(event) for matcher in matchers)


def new_silence(
    *,
    team: object,
    matchers: object,
    duration: float | None,
    comment: object,
    created_by: object,
    now: float,
) -> Silence:
    """A silence starting ``now`` for ``duration`` seconds, every field checked.

    ``SilenceError.problems`` lists everything wrong at once (for a CLI
    message or an HTTP 422), each saying how to fix it.
    """
    problems: list[str] = []
    if not isinstance(team, str) or not _TEAM.fullmatch(team):
        problems.append(
            f"team {str(team)[:40]!r} must be one team id (1-128 characters, no spaces, not '*')"
        )
    texts: list[str] = []
    if isinstance(matchers, list | tuple) and all(isinstance(m, str) for m in matchers):
        texts = list(matchers)
        try:
            texts = [str(m) for m in parse_matchers(texts)]
        except SilenceError as exc:
            problems += exc.problems
    else:
        problems.append("matchers must be a list of strings such as 'event=host.*'")
    if duration is None or not 1 <= duration <= MAX_DURATION:
        problems.append(
            f"the duration must be between 1s and {format_duration(MAX_DURATION)} (e.g. 2h)"
        )
    if not isinstance(comment, str) or not comment.strip() or len(comment) > MAX_COMMENT:
        problems.append(f"a comment is needed (why the silence; at most {MAX_COMMENT} characters)")
    if not isinstance(created_by, str) or not created_by.strip() or len(created_by) > 200:
        problems.append("created_by must name who makes the silence (1-200 characters)")
    if problems or duration is None:
        raise SilenceError(problems)
    assert isinstance(team, str) and isinstance(comment, str) and isinstance(created_by, str)
    return Silence(
        id=str(ULID.from_timestamp(now)),
        team=team,
        matchers=tuple(texts),
        starts_at=now,
        ends_at=now + duration,
        comment=comment.strip(),
        created_by=created_by.strip(),
        created_at=now,
    )
