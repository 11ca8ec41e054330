"""The root CLI finds commands through the ``eventbus.commands`` entry points."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType

import pytest

from eventbus.cli import CommandSpec, registry
from eventbus.errors import EventBusError


def _forget() -> None:
    registry._entry_points.cache_clear()
    registry._table.cache_clear()


@pytest.fixture(autouse=True)
def fresh_tables() -> Iterator[None]:
    _forget()
    yield
    _forget()


def installed(
    monkeypatch: pytest.MonkeyPatch,
    tables: dict[str, dict[str, CommandSpec]],
    commands: list[tuple[str, str]],
) -> None:
    """Tables in a throw-away module, and (command, table) entry points naming them."""
    module = ModuleType("eventbus_test_tables")
    for attribute, table in tables.items():
        setattr(module, attribute, table)
    monkeypatch.setitem(sys.modules, "eventbus_test_tables", module)
    entries = [
        EntryPoint(name, f"eventbus_test_tables:{table}", registry.ENTRY_POINT_GROUP)
        for name, table in commands
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: entries)


def test_both_packages_contribute_their_commands() -> None:
    commands = registry.contributed_commands()
    assert commands["publish"].module == "publishers.cli.publish"
    assert commands["run"].module == "consumers.cli.run"
    assert commands["run"].extra == "worker"
    assert commands["publish"].extra is None


def test_every_table_entry_has_its_entry_point_and_back() -> None:
    by_table: dict[str, set[str]] = {}
    for name, entry in registry._entry_points().items():
        by_table.setdefault(entry.value, set()).add(name)
    for value, names in by_table.items():
        table = registry._table(registry._entry_points()[next(iter(names))])
        assert set(table) == names, value


def test_a_command_contributed_twice_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = CommandSpec("somewhere.cli", "Help.")
    installed(
        monkeypatch,
        {"first": {"twice": spec}, "second": {"twice": spec}},
        [("twice", "first"), ("twice", "second")],
    )
    with pytest.raises(EventBusError, match="'twice' is contributed twice"):
        registry.contributed_commands()


def test_an_entry_point_whose_table_lacks_it_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed(monkeypatch, {"table": {}}, [("ghost", "table")])
    with pytest.raises(EventBusError, match="has no 'ghost' command"):
        registry.command_spec("ghost")


def test_a_missing_module_of_the_project_itself_is_not_an_extra_hint() -> None:
    # a broken install or a typo must show its traceback, not a misleading pip hint
    spec = CommandSpec("consumers.cli.no_such_command", "Help.", extra="worker")
    with pytest.raises(ModuleNotFoundError):
        registry.load_command("nothing", spec)


def test_a_missing_third_party_module_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "eventbus_test_command.py").write_text("import eventbus_test_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = CommandSpec("eventbus_test_command", "Help.", extra="worker")
    with pytest.raises(SystemExit) as exited:
        registry.load_command("thing", spec)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "eventbus thing needs eventbus_test_absent_dependency" in err
    assert "pip install 'eventbus[worker]'" in err
