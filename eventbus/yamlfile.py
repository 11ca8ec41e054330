"""Reading the YAML configuration file: plain data, the line of every value, problems.

``${NAME}`` in a string is replaced by the environment variable ``NAME``
(``$${`` escapes). Values are built from the composed node tree rather than
by PyYAML's constructor, so every key keeps its line number for error
messages, and aliases are bounded: a recursive alias or one that expands
too far is a problem with its line, not a hang or a crash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, ConfigProblem

__all__ = ["MAX_ALIAS_VALUES", "Loaded", "dotted", "read_yaml"]

_VAR = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Values an alias (``*name``) may expand to, all aliases of a file together:
# far above what anchors for shared channel options need, far below a
# "billion laughs" file, which would otherwise expand exponentially.
MAX_ALIAS_VALUES = 10_000


class _AliasBomb(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Loaded:
    """A file's data, ``lines[path]`` for each value, and the problems found reading it.

    ``written[path]`` is the text of each unquoted scalar YAML read as something
    other than a string (``true``, ``yes``, ``1.10``, ``007``, a date): where a
    value is compared as text (``where`` filters), that is what the user meant.
    """

    data: dict[str, Any]
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)
    written: dict[tuple[Any, ...], str] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)
    # node ids converted so far (a second visit is an alias), those being
    # converted now (a visit to one of them is a recursive alias), and how many
    # values aliases have expanded to
    seen: set[int] = field(default_factory=set)
    open: set[int] = field(default_factory=set)
    alias_values: int = 0
    alias_depth: int = 0


def read_yaml(path: Path, env: Mapping[str, str]) -> Loaded:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [
                ConfigProblem(
                    str(path),
                    f"cannot read the file: {exc.strerror}",
                    "check the path given to --config or EVENTBUS_CONFIG",
                )
            ]
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            [
                ConfigProblem(
                    f"{path}{line}",
                    f"not valid YAML: {getattr(exc, 'problem', exc)}",
                    "fix the YAML syntax (indentation, quoting)",
                )
            ]
        ) from None
    loaded = Loaded({})
    if node is None:
        return loaded
    try:
        data = _convert(node, (), loaded, env, str(path))
    except _AliasBomb as exc:
        raise ConfigError(
            [
                ConfigProblem(
                    f"{path}:{exc.line}",
                    str(exc),
                    "write the values out, or use an anchor for a small shared block only",
                )
            ]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            [
                ConfigProblem(
                    f"{path}:1",
                    "the file must be a mapping of sections",
                    "start with keys such as broker:, channels:",
                )
            ]
        )
    loaded.data = data
    return loaded


def _convert(
    node: yaml.Node, path: tuple[Any, ...], loaded: Loaded, env: Mapping[str, str], source: str
) -> Any:
    """The plain value of ``node``, refusing aliases that recurse or expand too far."""
    key = id(node)
    if key in loaded.open:
        raise _AliasBomb(
            node.start_mark.line + 1,
            f"'{dotted(path)}' is an alias of a value that contains it (a recursive alias)",
        )
    alias = key in loaded.seen
    loaded.seen.add(key)
    loaded.alias_depth += alias
    if loaded.alias_depth:
        loaded.alias_values += 1
        if loaded.alias_values > MAX_ALIAS_VALUES:
            raise _AliasBomb(
                node.start_mark.line + 1,
                f"aliases (*name) expand to more than {MAX_ALIAS_VALUES:,} values",
            )
    loaded.open.add(key)
    try:
        return _convert_node(node, path, loaded, env, source)
    finally:
        loaded.open.discard(key)
        loaded.alias_depth -= alias


def _convert_node(
    node: yaml.Node, path: tuple[Any, ...], loaded: Loaded, env: Mapping[str, str], source: str
) -> Any:
    loaded.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = (
                str(_safe_scalar(key_node, path, loaded, source))
                if isinstance(key_node, yaml.ScalarNode)
                else "?"
            )
            if key in out:
                loaded.problems.append(
                    ConfigProblem(
                        f"{source}:{key_node.start_mark.line + 1}",
                        f"key '{dotted((*path, key))}' appears twice",
                        "keep one of them",
                    )
                )
            out[key] = _convert(value_node, (*path, key), loaded, env, source)
            loaded.lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, (*path, i), loaded, env, source) for i, v in enumerate(node.value)]
    value = _safe_scalar(node, path, loaded, source) if isinstance(node, yaml.ScalarNode) else None
    if value is not None and not isinstance(value, str) and getattr(node, "style", "") is None:
        loaded.written[path] = str(node.value)
    if isinstance(value, str) and "$" in value:
        value = _substitute(value, path, loaded, env, source, node.start_mark.line + 1)
    return value


def _safe_scalar(node: yaml.ScalarNode, path: tuple[Any, ...], loaded: Loaded, source: str) -> Any:
    """The scalar's value; an unknown tag or an impossible date is a problem, not a crash."""
    try:
        return _scalar(node)
    except (yaml.YAMLError, ValueError) as exc:
        loaded.problems.append(
            ConfigProblem(
                f"{source}:{node.start_mark.line + 1}",
                f"'{dotted(path)}' cannot be read: {getattr(exc, 'problem', None) or exc}",
                "quote the value to make it a plain string",
            )
        )
        return node.value


def _scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node)
    finally:
        loader.dispose()


def _substitute(
    value: str,
    path: tuple[Any, ...],
    loaded: Loaded,
    env: Mapping[str, str],
    source: str,
    line: int,
) -> str:
    def repl(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        name = match.group(2)
        if name not in env:
            loaded.problems.append(
                ConfigProblem(
                    f"{source}:{line}",
                    f"'{dotted(path)}' refers to ${{{name}}}, which is not set",
                    f"export {name}=... before starting, or write $${{{name}}} for a literal",
                )
            )
            return ""
        return env[name]

    return _VAR.sub(repl, value)


def dotted(path: Iterable[Any]) -> str:
    """``channels[0].url`` for the path ``("channels", 0, "url")``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
