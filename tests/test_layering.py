"""The dependency direction, read from the source: the core never imports the
packages built on it, and no modules import each other in a loop.

Every ``import`` counts, at module level or inside a function (a lazy import
only hides a loop, it does not remove it); relative imports are resolved to
module names. ``import pkg.sub`` and ``from pkg import sub`` are edges to
``pkg.sub``; a package's ``__init__`` is a module of its own. Importing
``pkg.sub`` runs ``pkg/__init__`` first, so it is an edge to ``pkg`` as well,
unless ``pkg`` contains the importing module (then it is already running).
Imports under ``if TYPE_CHECKING:`` never run, so they count for the
direction but not for loops.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("eventbus", "publishers", "consumers")
CORE = "eventbus"
ABOVE_CORE = ("publishers", "consumers")


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (the nearest one that exists)
    line: int
    typing_only: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> Mapping[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def nearest_module(name: str) -> str:
    """``name`` itself, or the package it names an attribute of."""
    known = modules()
    parts = name.split(".")
    while len(parts) > 1 and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.typing_only = False
        self.found: list[Import] = []

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        outer, self.typing_only = self.typing_only, True
        for child in node.body:
            self.visit(child)
        self.typing_only = outer
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._absolute(node)
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            self._add(candidate if candidate in modules() else base, node.lineno)

    def _absolute(self, node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        parts = self.package.split(".")
        base = parts[: len(parts) - (node.level - 1)]
        return ".".join([*base, node.module] if node.module else base)

    def _add(self, name: str, line: int) -> None:
        if name.partition(".")[0] in PACKAGES:
            self.found.append(Import(self.module, nearest_module(name), line, self.typing_only))


def imports_of(module: str) -> list[Import]:
    path = modules()[module]
    collector = _Collector(module, path.name == "__init__.py")
    collector.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return collector.found


def all_imports() -> Iterator[Import]:
    for module in modules():
        yield from imports_of(module)


def _runs(source: str, target: str) -> Iterator[str]:
    """``target`` and the packages around it that importing it initialises."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        module = ".".join(parts[:end])
        if source == module or source.startswith(module + "."):
            return  # an ancestor of the importer: initialised before it ran
        yield module


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in modules()}
    for found in all_imports():
        if not found.typing_only:
            graph[found.source].update(_runs(found.source, found.target))
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One loop per strongly connected component (Tarjan), each as a path a -> ... -> a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_loop_through(component, graph) for component in sorted(components)]


def _loop_through(component: list[str], graph: Mapping[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & members):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in a component without a loop")  # pragma: no cover


def test_the_core_never_imports_the_packages_above_it() -> None:
    wrong = [
        f"{modules()[found.source].relative_to(ROOT)}:{found.line} imports {found.target}"
        for found in all_imports()
        if found.source.partition(".")[0] == CORE and found.target.partition(".")[0] in ABOVE_CORE
    ]
    assert not wrong, "eventbus must not import consumers or publishers:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(loop) for loop in found)


# -- the checker itself ---------------------------------------------------------------------


def test_relative_and_function_local_imports_are_edges() -> None:
    graph = import_graph()
    assert "eventbus.live" in graph["eventbus.brokers.redis_streams"]  # from ..live import
    assert "consumers.validation" in graph["consumers.cli.common"]  # from ..validation import
    # `from eventbus.cli import CommandSpec` names an attribute: the edge is to the package
    assert "eventbus.cli" in graph["consumers.cli"]
    # ... whose parent package's __init__ runs first
    assert "eventbus" in graph["consumers.cli"]
    # but a module's own packages are already running when it imports a sibling
    assert "eventbus" not in graph["eventbus.brokers.redis_streams"]
    assert "eventbus.brokers" not in graph["eventbus.brokers.redis_streams"]


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        pytest.param({"a": {"b"}, "b": {"c"}, "c": set()}, [], id="chain"),
        pytest.param({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]], id="pair"),
        pytest.param(
            {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()},
            [["a", "b", "c", "a"]],
            id="triangle",
        ),
        pytest.param(
            {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}},
            [["a", "b", "a"], ["c", "d", "c"]],
            id="two",
        ),
    ],
)
def test_cycles_are_found_and_named(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(graph) == expected
