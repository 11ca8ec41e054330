"""The one table of channel types."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest

import consumers.channels as channels
from consumers.channels.base import ChannelDeps
from consumers.channels.registry import CHANNEL_TYPES, channel_warnings, create_channel
from consumers.channels.urls import SCHEMES
from consumers.channels.webhook import warnings as webhook_warnings
from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec


def test_every_url_scheme_selects_exactly_one_type() -> None:
    claimed = [scheme for kind in CHANNEL_TYPES.values() for scheme in kind.schemes]
    assert sorted(claimed) == sorted(SCHEMES)


def test_names_are_the_keys() -> None:
    assert all(name == kind.name for name, kind in CHANNEL_TYPES.items())


def test_warnings_come_from_the_table() -> None:
    spec = ChannelSpec(name="hook", type="webhook", url="http://hooks.example.com/x")
    assert CHANNEL_TYPES["webhook"].warnings is webhook_warnings
    assert channel_warnings(spec) == webhook_warnings(spec)
    assert channel_warnings(ChannelSpec(name="out", type="console")) == []


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ChannelConfigError, match="use one of bark, console, discord"):
        # Building makes no request: the client is never opened.
        create_channel(ChannelSpec(name="x", type="pager"), ChannelDeps(http=httpx.AsyncClient()))


def _local_imports(path: Path) -> list[str]:
    """Project modules imported inside functions (where they would hide a loop)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and (
                inner.level or (inner.module or "").split(".")[0] in {"consumers", "eventbus"}
            ):
                found.append(f"{path.name}:{inner.lineno}")
    return found


def test_no_function_local_project_imports_in_channels() -> None:
    root = Path(channels.__file__).parent
    files = [*root.glob("*.py"), root.parent / "ratelimit.py", root.parent / "outbound.py"]
    assert [hit for path in files for hit in _local_imports(path)] == []


def test_ratelimit_knows_nothing_of_channels() -> None:
    tree = ast.parse((Path(channels.__file__).parent.parent / "ratelimit.py").read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any("channels" in (module or "") for module in modules)
