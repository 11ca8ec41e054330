"""The one Redactor: raw and percent-encoded forms, longest first, one minimum length."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from eventbus.redaction import MASK, MIN_SECRET_LENGTH, Redactor


def test_masks_raw_and_percent_encoded_forms() -> None:
    secret = "p@ss/w0rd#1"
    text = f"raw {secret} query {quote(secret, safe='')} path {quote(secret)}"
    masked = Redactor([secret]).mask(text)
    assert masked == f"raw {MASK} query {MASK} path {MASK}"


def test_longest_first_masks_a_containing_secret_whole() -> None:
    redactor = Redactor(["token", "token-and-more"])
    assert redactor.mask("x token-and-more y token") == f"x {MASK} y {MASK}"


def test_short_empty_and_missing_values_are_ignored() -> None:
    short = "a" * (MIN_SECRET_LENGTH - 1)
    redactor = Redactor([short, "", None])
    assert not redactor
    assert redactor.mask(f"keep {short}") == f"keep {short}"
    assert Redactor(["a" * MIN_SECRET_LENGTH]).mask("a" * MIN_SECRET_LENGTH) == MASK


def test_secret_str_is_unwrapped_and_repr_shows_no_secret() -> None:
    redactor = Redactor([SecretStr("hidden-value")])
    assert redactor.mask("is hidden-value") == f"is {MASK}"
    assert "hidden" not in repr(redactor)


def test_union_and_adding() -> None:
    joined = Redactor.union(Redactor(["first-secret"]), Redactor(["second-secret"]))
    assert joined.mask("first-secret second-secret") == f"{MASK} {MASK}"
    grown = Redactor(["first-secret"]).adding("learnt-token")
    assert grown.mask("learnt-token first-secret") == f"{MASK} {MASK}"
    assert Redactor().mask_optional(None) is None


_SECRET = st.text(
    alphabet=st.characters(blacklist_characters="*", blacklist_categories=("Cs",)),
    min_size=MIN_SECRET_LENGTH,
    max_size=20,
)


@given(
    secrets=st.lists(_SECRET, min_size=1, max_size=4),
    filler=st.lists(st.text(max_size=8), min_size=1, max_size=6),
    encoded=st.booleans(),
)
def test_no_form_of_any_secret_survives(
    secrets: list[str], filler: list[str], encoded: bool
) -> None:
    forms = [quote(s, safe="") if encoded else s for s in secrets]
    text = "".join(part + forms[index % len(forms)] for index, part in enumerate(filler))
    masked = Redactor(secrets).mask(text)
    for secret in secrets:
        assert secret not in masked
        assert quote(secret, safe="") not in masked
