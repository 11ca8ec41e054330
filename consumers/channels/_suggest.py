""" "Did you mean ...": the closest known name to a misspelt type, option or key.

``eventbus config check`` shows the suggestion as the problem's fix; it comes
from difflib (cutoff 0.8, as for the settings' own keys), or from a known
name that the unknown one is the tail or head of (``token`` for
``bot_token``), which difflib scores too low to suggest.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from eventbus.errors import ChannelConfigError

__all__ = ["SuggestingError", "closest", "did_you_mean"]

CUTOFF = 0.8


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` is most likely a misspelling or a short form of."""
    candidates = sorted(set(known))
    lowered = name.lower()
    found = difflib.get_close_matches(lowered, candidates, n=1, cutoff=CUTOFF)
    if found:
        return found[0]
    for candidate in candidates:
        if candidate.endswith(f"_{lowered}") or candidate.startswith(f"{lowered}_"):
            return candidate
    return None


def did_you_mean(names: Iterable[str], known: Iterable[str]) -> str:
    """``did you mean 'bot_token' (for 'token')?`` for those of ``names`` with a match."""
    candidates = list(known)
    found = [(name, closest(name, candidates)) for name in names]
    pairs = [(name, match) for name, match in found if match is not None]
    if not pairs:
        return ""
    if len(pairs) == 1 and len(found) == 1:
        return f"did you mean {pairs[0][1]!r}?"
    return "did you mean " + ", ".join(f"{match!r} for {name!r}" for name, match in pairs) + "?"


class SuggestingError(ChannelConfigError):
    """A ``ChannelConfigError`` that knows its fix (``config check`` shows it)."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix
