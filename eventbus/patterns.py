"""Patterns operators write (``where`` regexes and globs, silence matchers), compiled once.

Regexes go to RE2 (google-re2), not Python's ``re``: RE2 runs in time linear
in the input whatever the pattern, so a pattern from a configuration file or
an API call cannot stall the worker with backtracking (``(a+)+$`` on a long
value takes microseconds). The price is RE2's syntax: no look-around and no
backreferences; such a pattern is refused at load with RE2's reason. Globs
(``*``, ``?``, ``[...]``) follow the event patterns' rules.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Protocol

import re2

__all__ = ["MAX_PATTERN_LENGTH", "PatternError", "Search", "compile_glob", "compile_regex"]

# Longer patterns are refused: RE2's program size grows with the pattern.
MAX_PATTERN_LENGTH = 1000


class PatternError(ValueError):
    """A pattern that cannot be compiled; the message says why."""


class Search(Protocol):
    """A compiled pattern: ``search(text)`` finds it anywhere, ``match`` anchors it."""

    def search(self, text: str) -> object | None: ...

    def fullmatch(self, text: str) -> object | None: ...


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print parse errors to stderr itself
    return options


_OPTIONS = _options()


def compile_regex(pattern: str) -> Search:
    """``pattern`` compiled by RE2 (search semantics: unanchored unless it says ``^``)."""
    if not isinstance(pattern, str) or not pattern:
        raise PatternError("a regex must be a non-empty string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(
            f"regex is {len(pattern)} characters, more than the limit of {MAX_PATTERN_LENGTH}"
        )
    try:
        compiled: Search = re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise PatternError(
            f"regex {pattern!r} is not valid: {reason} (RE2 syntax: no look-around "
            "or backreferences)"
        ) from None
    return compiled


def compile_glob(pattern: str) -> Search:
    """A shell-style glob over the whole value: ``db-*`` matches ``db-1``, not ``old-db-1``."""
    if not isinstance(pattern, str) or not pattern:
        raise PatternError("a glob must be a non-empty string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(
            f"glob is {len(pattern)} characters, more than the limit of {MAX_PATTERN_LENGTH}"
        )
    return re.compile(fnmatch.translate(pattern))
