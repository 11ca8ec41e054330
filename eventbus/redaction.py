"""Masking secrets in text that leaves the process (errors, excerpts, CLI output).

A ``Redactor`` is built once from the secrets of one owner (a channel's
tokens, a URL's password) and masks every occurrence of each of them, raw and
percent-encoded, since URLs and form bodies carry them encoded. Forms are
replaced longest first, so a secret containing another one is masked whole
instead of leaving its remainder readable.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

from pydantic import SecretStr

__all__ = ["MASK", "MIN_SECRET_LENGTH", "Redactor", "mask"]

MASK: Final = "***"
# Shorter values are not masked: replacing every "v1" or "ops" would garble
# the text, and values that short are not credentials.
MIN_SECRET_LENGTH: Final = 4


def _forms(secret: str) -> set[str]:
    # quote() with and without "/" kept: paths keep slashes, query values do not.
    return {secret, quote(secret, safe=""), quote(secret)}


class Redactor:
    """Masks a fixed set of secrets: ``Redactor(secrets).mask(text)``.

    ``None``, empty and too-short values are ignored, so callers can pass
    optional fields as they are. ``repr`` never shows a secret.
    """

    __slots__ = ("_forms",)

    def __init__(self, secrets: Iterable[str | SecretStr | None] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
            if value and len(value) >= MIN_SECRET_LENGTH:
                forms |= _forms(value)
        self._forms: tuple[str, ...] = tuple(sorted(forms, key=len, reverse=True))

    @classmethod
    def union(cls, *redactors: Redactor) -> Redactor:
        """One redactor masking what each of ``redactors`` masks."""
        joined = cls()
        joined._forms = tuple(
            sorted({form for each in redactors for form in each._forms}, key=len, reverse=True)
        )
        return joined

    def adding(self, *secrets: str | SecretStr | None) -> Redactor:
        """A redactor masking these secrets as well (a token learnt at run time)."""
        return Redactor.union(self, Redactor(secrets))

    def mask(self, text: str) -> str:
        """``text`` with every form of every secret replaced by ``***``."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def mask_optional(self, text: str | None) -> str | None:
        return None if text is None else self.mask(text)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __repr__(self) -> str:
        return f"<Redactor of {len(self._forms)} form(s)>"


def mask(text: str, secrets: Iterable[str | SecretStr | None]) -> str:
    """``text`` with ``secrets`` masked, for a one-off text (otherwise keep a ``Redactor``)."""
    return Redactor(secrets).mask(text)
