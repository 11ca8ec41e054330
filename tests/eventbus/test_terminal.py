"""Control characters from publishers are shown, never obeyed, in terminal output."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventbus.terminal import printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07", id="window-title"),
        pytest.param("disk\x1b[2Jfull", "disk\\x1b[2Jfull", id="clear-screen"),
        pytest.param("ok\rFAKE", "ok\\rFAKE", id="carriage-return"),
        pytest.param("a\x9bb", "a\\x9bb", id="c1-csi"),
        pytest.param("two\nlines", "two\\nlines", id="newline"),
        pytest.param("naïve ✓", "naïve ✓", id="unicode-kept"),
    ],
)
def test_controls_are_escaped(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_newlines_may_stay_for_multi_line_output() -> None:
    assert printable("a\x1b\nb", keep_newlines=True) == "a\\x1b\nb"


@given(st.text())
def test_nothing_a_terminal_obeys_survives(text: str) -> None:
    out = printable(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)
