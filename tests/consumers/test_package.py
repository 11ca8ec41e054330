"""The ``consumers`` package: its exports resolve, and only on use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import consumers


def test_every_export_resolves() -> None:
    for name in consumers.__all__:
        assert getattr(consumers, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = consumers.Nope  # type: ignore[attr-defined]


def test_importing_a_submodule_does_not_load_the_daemon() -> None:
    # eventbus --help imports consumers.cli (its command table) and nothing more
    code = "import sys, consumers.cli; sys.exit('consumers.daemon' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
