"""A subscription's filters: severity and ``where``, compiled once when it is loaded.

``min_severity: warning`` keeps events of severity ``warning`` and above
(``debug`` < ``info`` < ``warning`` < ``error`` < ``critical``, the
effective severity of ``Event.level``); ``severities: [...]`` keeps exactly
those. ``where`` maps a path (``eventbus.paths``) to a matcher, and an event
must satisfy every one of them (AND):

- a scalar: the value equals it, compared as text (``true`` is ``"true"``,
  ``5`` is ``"5"``; from a YAML file, the text as written, so ``1.10``,
  ``yes`` and ``007`` mean those characters, not what YAML reads them as);
- a list: any of its items (values, or matchers);
- ``{glob: "db-*"}``: the whole value matches the shell-style glob;
- ``{regex: "disk|quota"}``: RE2 finds the pattern in the value (``^...$``
  to anchor it);
- ``{exists: true|false}``: the path has a value, or has none;
- ``{not: <matcher>}``: the matcher does not hold (an absent value is not
  equal to anything, so ``{not: x}`` holds for it);
- a mapping of several of these: all of them.

An absent value (no ``error``, a metadata key not sent) matches only
``{exists: false}`` and negations. Every problem is a ``FilterError``
carrying the location of each offending key inside the subscription.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

from .envelope import Event, Severity
from .paths import PATHS, PathError, reader
from .patterns import PatternError, Search, compile_glob, compile_regex

__all__ = [
    "MATCHER_SCHEMA",
    "OPERATORS",
    "WHERE_SCHEMA",
    "FilterError",
    "FilterProblem",
    "Filters",
    "as_text",
    "check_where",
    "compile_filters",
    "operand_paths",
    "severity_set",
]

Test = Callable[[str | None], bool]
Check = Callable[[Event], bool]
Loc = tuple[str | int, ...]

OPERATORS = ("glob", "regex", "exists", "not")


@dataclass(frozen=True, slots=True)
class FilterProblem:
    """One problem: where it is (keys inside the subscription), what is wrong, the value."""

    loc: Loc
    message: str
    value: Any = None


class FilterError(ValueError):
    """Filters that cannot be compiled; ``problems`` has each one with its location."""

    def __init__(self, problems: Sequence[FilterProblem]) -> None:
        super().__init__("; ".join(f"{_dotted(p.loc)}: {p.message}" for p in problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True, eq=False)
class Filters:
    """The compiled filters of one subscription; ``rejects`` runs per candidate event."""

    severities: frozenset[Severity] | None
    checks: tuple[Check, ...]

    def rejects(self, event: Event) -> str | None:
        """``"severity"`` or ``"where"`` when the event is filtered out, else ``None``."""
        if self.severities is not None and event.level not in self.severities:
            return "severity"
        for check in self.checks:
            if not check(event):
                return "where"
        return None

    def __copy__(self) -> Filters:
        return self  # immutable, and compiled patterns need not (or cannot) be copied

    def __deepcopy__(self, memo: dict[int, Any]) -> Filters:
        return self


def compile_filters(
    min_severity: Severity | None,
    severities: Sequence[Severity] | None,
    where: Mapping[str, Any] | None,
) -> Filters | None:
    """The compiled filters, ``None`` when nothing is filtered; ``FilterError`` if invalid."""
    problems: list[FilterProblem] = []
    allowed = None
    try:
        allowed = severity_set(min_severity, severities)
    except FilterError as exc:
        problems += exc.problems
    checks = _compile_where(where or {}, problems)
    if problems:
        raise FilterError(problems)
    if allowed is None and not checks:
        return None
    return Filters(allowed, checks)


def check_where(where: Mapping[str, Any]) -> None:
    """Raise ``FilterError`` for every problem of ``where`` (its locations start at "where")."""
    problems: list[FilterProblem] = []
    _compile_where(where, problems)
    if problems:
        raise FilterError(problems)


def severity_set(
    min_severity: Severity | None, severities: Sequence[Severity] | None
) -> frozenset[Severity] | None:
    """The severities a subscription keeps, ``None`` for all of them."""
    if min_severity is not None and severities is not None:
        raise FilterError(
            [
                FilterProblem(
                    ("severities",),
                    "min_severity and severities are both set: keep one (min_severity: "
                    "X keeps X and above, severities: [...] exactly those)",
                )
            ]
        )
    if severities is not None:
        if not severities:
            raise FilterError(
                [
                    FilterProblem(
                        ("severities",),
                        "an empty list keeps no event: name at least one severity, or leave "
                        "severities out to keep every one",
                    )
                ]
            )
        return frozenset(severities)
    if min_severity is None or min_severity is Severity.DEBUG:
        return None
    return frozenset(level for level in Severity if level.rank >= min_severity.rank)


def as_text(value: Any) -> str | None:
    """A scalar as the text an event's value is compared with (``None``: not a scalar)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def operand_paths(where: Mapping[str, Any]) -> Iterator[Loc]:
    """Where the values compared as text are inside ``where`` (for YAML's written text)."""
    for key, value in where.items():
        yield from _operands(value, (key,))


def _operands(value: Any, loc: Loc) -> Iterator[Loc]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _operands(item, (*loc, index))
    elif isinstance(value, dict):
        for operator in ("glob", "regex"):
            if operator in value:
                yield (*loc, operator)
        if "not" in value:
            yield from _operands(value["not"], (*loc, "not"))
    else:
        yield loc


def _compile_where(where: Mapping[str, Any], problems: list[FilterProblem]) -> tuple[Check, ...]:
    checks: list[Check] = []
    for path, value in where.items():
        try:
            read = reader(path)
        except PathError as exc:
            problems.append(FilterProblem(("where", path), str(exc)))
            continue
        test = _matcher(value, ("where", path), problems)
        if test is not None:
            checks.append(_check(read, test))
    return tuple(checks)


def _check(read: Callable[[Event], str | None], test: Test) -> Check:
    return lambda event: test(read(event))


def _matcher(value: Any, loc: Loc, problems: list[FilterProblem]) -> Test | None:
    if isinstance(value, list):
        return _any_of(value, loc, problems)
    if isinstance(value, dict):
        return _operators(value, loc, problems)
    text = as_text(value)
    if text is None:
        problems.append(FilterProblem(loc, _not_a_matcher(value), value))
        return None
    return lambda found: found == text


def _not_a_matcher(value: Any) -> str:
    if value is None:
        return (
            "no value to compare with: write {exists: false} to match an absent value, "
            "or '' for an empty one"
        )
    return (
        f"a {type(value).__name__} is not a matcher: use a value, a list of values, or one "
        f"of {', '.join('{' + op + ': ...}' for op in OPERATORS)}"
    )


def _any_of(items: list[Any], loc: Loc, problems: list[FilterProblem]) -> Test | None:
    if not items:
        problems.append(
            FilterProblem(loc, "an empty list matches nothing: list at least one value")
        )
        return None
    texts: set[str] = set()
    tests: list[Test] = []
    for index, item in enumerate(items):
        if isinstance(item, list):
            problems.append(
                FilterProblem((*loc, index), "a list inside a list: write one flat list")
            )
        elif isinstance(item, dict):
            test = _operators(item, (*loc, index), problems)
            if test is not None:
                tests.append(test)
        elif (text := as_text(item)) is not None:
            texts.add(text)
        else:
            problems.append(FilterProblem((*loc, index), _not_a_matcher(item), item))
    values = frozenset(texts)
    if not tests:
        return lambda found: found in values
    alternatives = tuple(tests)
    return lambda found: found in values or any(test(found) for test in alternatives)


def _operators(spec: dict[str, Any], loc: Loc, problems: list[FilterProblem]) -> Test | None:
    if not spec:
        problems.append(FilterProblem(loc, f"an empty matcher: use one of {', '.join(OPERATORS)}"))
        return None
    tests: list[Test] = []
    count = len(problems)
    for operator, operand in spec.items():
        test = _operator(operator, operand, (*loc, operator), problems)
        if test is not None:
            tests.append(test)
    if len(problems) > count:
        return None
    if len(tests) == 1:
        return tests[0]
    every = tuple(tests)
    return lambda found: all(test(found) for test in every)


def _operator(operator: str, operand: Any, loc: Loc, problems: list[FilterProblem]) -> Test | None:
    if operator == "not":
        inner = _matcher(operand, loc, problems)
        return None if inner is None else (lambda found: not inner(found))
    if operator == "exists":
        if not isinstance(operand, bool):
            problems.append(FilterProblem(loc, "exists takes true or false", operand))
            return None
        return (lambda found: found is not None) if operand else (lambda found: found is None)
    if operator in ("glob", "regex"):
        try:
            if not isinstance(operand, str):
                raise PatternError(f"a {operator} must be a non-empty string")
            pattern = _compiled(operator, operand)
        except PatternError as exc:
            problems.append(FilterProblem(loc, str(exc), operand))
            return None
        if operator == "glob":
            return lambda found: found is not None and pattern.fullmatch(found) is not None
        return lambda found: found is not None and pattern.search(found) is not None
    close = get_close_matches(operator, OPERATORS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    problems.append(
        FilterProblem(
            loc,
            f"unknown matcher {operator!r}{hint}: use {', '.join(OPERATORS)}, a value or a list",
        )
    )
    return None


@functools.lru_cache(maxsize=4096)
def _compiled(operator: str, pattern: str) -> Search:
    """A pattern compiled once per process, shared by every subscription using it.

    Teams often copy one filter: a thousand subscriptions then hold one RE2
    program, not a thousand (less memory, faster loads, hotter caches).
    """
    return (compile_glob if operator == "glob" else compile_regex)(pattern)


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


# The JSON Schema of one matcher (``$defs/WhereMatcher`` of the configuration's schema).
MATCHER_SCHEMA: dict[str, Any] = {
    "description": (
        "A value (equals, compared as text), a list (any of its items), or a mapping of "
        "glob / regex (RE2, search) / exists / not (all of them must hold)."
    ),
    "anyOf": [
        {"type": ["string", "number", "boolean"]},
        {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/WhereMatcher"}},
        {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                "glob": {"type": "string", "minLength": 1},
                "regex": {"type": "string", "minLength": 1},
                "exists": {"type": "boolean"},
                "not": {"$ref": "#/$defs/WhereMatcher"},
            },
        },
    ],
}

# The JSON Schema of ``where`` beside its type (an object): its keys and values.
WHERE_SCHEMA: dict[str, Any] = {
    "propertyNames": {
        "pattern": "^(" + "|".join(re.escape(path) for path in PATHS) + r"|metadata\..+)$"
    },
    "additionalProperties": {"$ref": "#/$defs/WhereMatcher"},
}
