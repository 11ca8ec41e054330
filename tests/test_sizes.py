"""The packages stay easy to read: no module over 450 lines, no function over 60.

A module is one idea and a function one step; past these sizes they are
asking to be split (tests and bench are not held to this).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("eventbus", "publishers", "consumers")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60

MODULES = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_is_not_too_long(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines: split it by idea"


def test_no_function_is_too_long() -> None:
    long = []
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                # from the def line (decorators aside) to the last line of the body
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long.append(f"{_name(path)}:{node.lineno} {node.name}() has {size} lines")
    assert not long, "functions to split:\n" + "\n".join(long)


def test_no_single_letter_names_outside_comprehensions() -> None:
    found = []
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside = {
            id(target)
            for node in ast.walk(tree)
            if isinstance(node, ast.comprehension)
            for target in ast.walk(node.target)
        }
        # class-level annotations are field names of a wire format (the envelope's "v")
        fields = {
            id(statement.target)
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            for statement in node.body
            if isinstance(statement, ast.AnnAssign)
        }
        typevars = {
            id(target)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", "") == "TypeVar"
            for target in node.targets
        }
        for node in ast.walk(tree):
            names: list[tuple[str, int]] = []
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                if id(node) not in inside | fields | typevars:
                    names.append((node.id, node.lineno))
            elif isinstance(node, ast.arg):
                names.append((node.arg, node.lineno))
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.append((node.name, node.lineno))
            found += [f"{_name(path)}:{line} {n}" for n, line in names if len(n) == 1 and n != "_"]
    assert not found, "use names that say what they hold:\n" + "\n".join(found)


def test_no_nested_functions_named_go() -> None:
    found = [
        f"{_name(path)}:{node.lineno}"
        for path in MODULES
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "go"
    ]
    assert not found, "name what the function does:\n" + "\n".join(found)
