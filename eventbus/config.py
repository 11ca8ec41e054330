"""Loading the YAML configuration into ``Settings`` with precise errors.

Every problem found is reported at once, with ``file:line`` where the YAML
gives one, the offending value (never a secret) and the fix. ``${NAME}`` in a
YAML string is replaced by the environment variable ``NAME`` (``$${`` escapes).
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from .errors import ConfigError, ConfigProblem
from .filters import operand_paths
from .settings import PATTERN_RE, Settings, env_config_path, read_environ, redact_url
from .yamlfile import Loaded, dotted, read_yaml

__all__ = ["ChannelValidator", "load_settings", "validate_settings"]

_SECRET_HINTS = ("secret", "token", "password", "url", "key", "pass")

# consumers plugs in here to validate channel options and subscription
# templates, keeping the dependency direction (eventbus never imports consumers):
# each yields (index in its section, message, fix).
ChannelValidator = Callable[[Settings], Iterable[tuple[int, str, str]]]


def load_settings(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    channel_validator: ChannelValidator | None = None,
    subscription_validator: ChannelValidator | None = None,
    **overrides: Any,
) -> Settings:
    """Build ``Settings`` from a YAML file (or ``EVENTBUS_CONFIG``) and the environment.

    Raises ``ConfigError`` listing every problem.
    """
    env = read_environ() if environ is None else dict(environ)
    if path is None:
        path = env_config_path(env)
    loaded = read_yaml(Path(path), env) if path else Loaded({})
    _filters_as_written(loaded)
    where = str(path) if path else "environment"
    try:
        settings = Settings(**loaded.data)
        if overrides:
            # Overrides (from the CLI) beat the environment: validate them on
            # top of the loaded values without reading the environment again.
            settings = _DataOnly(**{**settings.model_dump(), **overrides})
    except ValidationError as exc:
        problems = loaded.problems + _validation_problems(exc, loaded, where)
        problems += _raw_reference_problems(loaded.data, loaded.lines, where)
        # What did validate is still checked deeply, so one pass shows everything.
        partial = _without_invalid(loaded.data, exc)
        if partial is not None:
            settings, kept = partial
            checks = (("channels", channel_validator), ("subscriptions", subscription_validator))
            problems += _deep_problems(settings, checks, loaded, where, kept)
        raise ConfigError(problems) from None
    problems = loaded.problems + validate_settings(settings, loaded.lines, where)
    checks = (("channels", channel_validator), ("subscriptions", subscription_validator))
    problems += _deep_problems(settings, checks, loaded, where)
    if problems:
        raise ConfigError(problems)
    return settings


_Kept = Mapping[str, list[int]]  # section -> original index of each entry kept


def _deep_problems(
    settings: Settings,
    checks: Iterable[tuple[str, ChannelValidator | None]],
    loaded: Loaded,
    where: str,
    kept: _Kept | None = None,
) -> list[ConfigProblem]:
    problems = []
    for section, check in checks:
        for index, message, fix in check(settings) if check is not None else ():
            original = kept[section][index] if kept is not None else index
            problems.append(
                ConfigProblem(_where(where, loaded.lines, (section, original)), message, fix)
            )
    return problems


def _without_invalid(data: dict[str, Any], exc: ValidationError) -> tuple[Settings, _Kept] | None:
    """Settings from ``data`` less what failed (invalid list entries, other sections)."""
    broken_sections: set[str] = set()
    broken_entries: dict[str, set[int]] = {"channels": set(), "subscriptions": set()}
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        if not loc:
            return None
        section = str(loc[0])
        if section in broken_entries and len(loc) > 1 and isinstance(loc[1], int):
            broken_entries[section].add(loc[1])
        else:
            broken_sections.add(section)
    trimmed = {k: v for k, v in data.items() if k not in broken_sections}
    kept: dict[str, list[int]] = {}
    for section, broken in broken_entries.items():
        items = trimmed.get(section)
        indexes = (
            [i for i in range(len(items)) if i not in broken] if isinstance(items, list) else []
        )
        kept[section] = indexes
        if isinstance(items, list):
            trimmed[section] = [items[i] for i in indexes]
    try:
        return _DataOnly(**trimmed), kept
    except ValidationError:  # e.g. a bad environment variable: nothing more to learn
        return None


class _DataOnly(Settings):
    """``Settings`` validated from the given data alone, no environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def validate_settings(
    settings: Settings,
    lines: Mapping[tuple[Any, ...], int] | None = None,
    where: str = "configuration",
) -> list[ConfigProblem]:
    """Cross-field checks the models cannot do alone."""
    lines = lines or {}
    problems: list[ConfigProblem] = []

    def add(path: tuple[Any, ...], message: str, fix: str) -> None:
        problems.append(ConfigProblem(_where(where, lines, path), message, fix))

    seen = _reference_problems(
        [(i, c.name) for i, c in enumerate(settings.channels)],
        [(i, s.name, s.channels) for i, s in enumerate(settings.subscriptions)],
        add,
    )
    for index, channel in enumerate(settings.channels):
        if not channel.kind and channel.name in seen:
            add(
                ("channels", index),
                f"channel {channel.name!r} has neither 'type' nor 'url'",
                "add type: webhook|telegram|console|... or a shoutrrr-style url",
            )
    catalog = settings.catalog.build()
    for index, sub in enumerate(settings.subscriptions):
        for position, pattern in enumerate(sub.events):
            if not PATTERN_RE.match(pattern):
                continue  # already reported by the model
            if "*" not in pattern and "?" not in pattern and not catalog.is_subscribable(pattern):
                add(
                    ("subscriptions", index, "events", position),
                    f"subscription {sub.name!r} names {pattern!r}, which is "
                    + (
                        "transient (never delivered)"
                        if pattern in catalog
                        else "not in the catalog (catalog.strict is on)"
                    ),
                    "subscribe to a durable type, or declare it under catalog.types",
                )
    return problems


def _reference_problems(
    channels: list[tuple[int, str]],
    subscriptions: list[tuple[int, str, list[str]]],
    add: Callable[[tuple[Any, ...], str, str], None],
) -> dict[str, int]:
    """Duplicate names and subscriptions naming missing channels; returns name -> index."""
    seen: dict[str, int] = {}
    for index, name in channels:
        if name in seen:
            add(
                ("channels", index, "name"),
                f"duplicate channel name {name!r}",
                f"rename one; the first is channels[{seen[name]}]",
            )
        seen.setdefault(name, index)
    subs: dict[str, int] = {}
    for index, name, targets in subscriptions:
        if name in subs:
            add(
                ("subscriptions", index, "name"),
                f"duplicate subscription name {name!r}",
                f"rename one; the first is subscriptions[{subs[name]}]",
            )
        subs.setdefault(name, index)
        for position, target in enumerate(targets):
            if target not in seen:
                known = ", ".join(sorted(seen)) or "none defined"
                add(
                    ("subscriptions", index, "channels", position),
                    f"subscription {name!r} names channel {target!r}, which does not exist",
                    f"define it under channels (known: {known})",
                )
    return seen


def _raw_reference_problems(
    data: dict[str, Any], lines: Mapping[tuple[Any, ...], int], where: str
) -> list[ConfigProblem]:
    """The same checks on the raw YAML, when the models did not validate."""
    problems: list[ConfigProblem] = []

    def add(path: tuple[Any, ...], message: str, fix: str) -> None:
        problems.append(ConfigProblem(_where(where, lines, path), message, fix))

    def named(section: str) -> list[tuple[int, dict[str, Any]]]:
        items = data.get(section)
        if not isinstance(items, list):
            return []
        return [
            (i, x)
            for i, x in enumerate(items)
            if isinstance(x, dict) and isinstance(x.get("name"), str)
        ]

    subs = [
        (i, x["name"], [c for c in x.get("channels") or [] if isinstance(c, str)])
        for i, x in named("subscriptions")
        if isinstance(x.get("channels", []), list)
    ]
    _reference_problems([(i, x["name"]) for i, x in named("channels")], subs, add)
    return problems


def _filters_as_written(loaded: Loaded) -> None:
    """Put back the text of ``where`` values YAML read as booleans, numbers or dates.

    A filter compares text: ``metadata.version: 1.10`` means ``"1.10"``, not the
    float 1.1, and ``metadata.enabled: yes`` means ``"yes"``, not ``true``.
    """
    subscriptions = loaded.data.get("subscriptions")
    if not isinstance(subscriptions, list):
        return
    for index, sub in enumerate(subscriptions):
        where = sub.get("where") if isinstance(sub, dict) else None
        if not isinstance(where, dict):
            continue
        for loc in list(operand_paths(where)):
            text = loaded.written.get(("subscriptions", index, "where", *loc))
            if text is None:
                continue
            parent: Any = where
            for part in loc[:-1]:
                parent = parent[part]
            if not isinstance(parent[loc[-1]], list | dict):
                parent[loc[-1]] = text


def _where(source: str, lines: Mapping[tuple[Any, ...], int], path: tuple[Any, ...]) -> str:
    for cut in range(len(path), 0, -1):
        line = lines.get(tuple(path[:cut]))
        if line is not None:
            return f"{source}:{line}"
    return f"{source}: " + dotted(path) if path else source


def _validation_problems(exc: ValidationError, loaded: Loaded, where: str) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            message, fix = f"unknown key '{dotted(loc)}'", _spelling_fix(loc)
        elif err["type"] == "missing":
            message, fix = f"'{dotted(loc)}' is required", "add it"
        else:
            value = err.get("input")
            if _is_secret(loc) or isinstance(value, dict | list):
                shown = ""
            elif err["type"] == "filter" and value is None:
                shown = ""  # a filter problem says itself what was wrong
            elif isinstance(value, str) and "://" in value:
                shown = f" (got {redact_url(value)!r})"  # e.g. a bare channel URL
            else:
                shown = f" (got {value!r})"
            text = err["msg"].removeprefix("Value error, ")  # pydantic's, for our validators
            message, fix = f"'{dotted(loc)}': {text}{shown}", ""
        problems.append(ConfigProblem(_where(where, loaded.lines, loc), message, fix))
    return problems


def _is_secret(loc: tuple[Any, ...]) -> bool:
    return any(isinstance(p, str) and any(h in p.lower() for h in _SECRET_HINTS) for p in loc)


def _spelling_fix(loc: tuple[Any, ...]) -> str:
    close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc[:-1]), n=1, cutoff=0.8)
    if close:
        return f"did you mean '{close[0]}'?"
    return "remove it or check its spelling"


def _known_keys(path: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``path`` (of ``Settings``) accepts."""
    model: Any = Settings
    for part in path:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(getattr(model, "model_fields", {}))


def _model_of(annotation: Any) -> Any:
    """The pydantic model inside ``Model``, ``list[Model]`` or ``Model | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
