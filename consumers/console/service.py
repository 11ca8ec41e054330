"""What the console API and CLI do with channels and subscriptions, in one place.

Both call ``Console``: the HTTP routes with the token's teams and name, the
CLI with every team and the operator's user name. YAML-defined items are
shown read-only (``"source": "config"``); names are unique across both.
Visibility: an item of a team outside ``teams`` does not exist for the
caller (``NotFound``, exactly as a missing one).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

import httpx

from eventbus.redaction import Redactor
from eventbus.settings import ChannelSpec, Settings

from ..channels.base import ChannelDeps, channel_redactor
from ..channels.registry import create_channel
from .crypto import NO_KEY, SealError
from .items import Checked, check_channel, check_subscription, mask_view, unmask
from .store import ConsoleStore, Item

__all__ = ["Console", "ConsoleError", "Teams"]

Teams = frozenset[str] | None  # None: every team (an admin token, the CLI)
_KEEP: Final = ("name",)


class ConsoleError(Exception):
    """A refused request: ``status`` is its HTTP status, ``problems`` the details."""

    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []


def _not_found(kind: str, name: str) -> ConsoleError:
    return ConsoleError(404, f"no {kind} named {name[:64]!r}")


def _allows(teams: Teams, team: str) -> bool:
    return teams is None or team in teams


class Console:
    def __init__(self, settings: Settings, store: ConsoleStore) -> None:
        self.settings = settings  # the YAML configuration (read-only items)
        self.store = store
        # Building a channel makes no request: this client is never opened.
        self.deps = ChannelDeps(http=httpx.AsyncClient(), security=settings.security)

    # -- views -------------------------------------------------------------------

    def view(self, item: Item) -> dict[str, Any]:
        """``item`` as responses show it, secrets masked."""
        return {
            **self._shown(item),
            "team": item.team,
            "source": "api",
            "updated_at": item.updated_at,
            "updated_by": item.updated_by,
        }

    def _shown(self, item: Item) -> dict[str, Any]:
        if item.kind != "channel":
            return dict(item.body)
        return mask_view(item.body, _redactor_of(item.body, self.deps))

    def _config_views(self, kind: str) -> list[dict[str, Any]]:
        if kind == "channel":
            return [
                {
                    "name": spec.name,
                    "type": spec.kind,
                    "target": _describe(spec, self.deps),
                    "source": "config",
                }
                for spec in self.settings.channels
            ]
        return [
            {**sub.model_dump(mode="json", exclude_defaults=True), "source": "config"}
            for sub in self.settings.subscriptions
        ]

    async def items(self, kind: str, teams: Teams) -> list[dict[str, Any]]:
        snapshot = await self.store.snapshot()
        items = snapshot.channels if kind == "channel" else snapshot.subscriptions
        own = [self.view(item) for item in items if _allows(teams, item.team)]
        return self._config_views(kind) + own

    async def show(self, kind: str, name: str, teams: Teams) -> dict[str, Any]:
        for view in self._config_views(kind):
            if view["name"] == name:
                return view
        return self.view(await self._visible(kind, name, teams))

    async def _visible(self, kind: str, name: str, teams: Teams) -> Item:
        item = await self.store.get(kind, name)
        if item is None or not _allows(teams, item.team):
            raise _not_found(kind, name)
        return item

    def _read_only(self, kind: str, name: str) -> None:
        names = self.settings.channels if kind == "channel" else self.settings.subscriptions
        if any(spec.name == name for spec in names):
            raise ConsoleError(
                409,
                f"{kind} {name!r} is defined in the YAML configuration (source: config): "
                "change it there and reload the workers",
            )

    # -- changes -------------------------------------------------------------------

    async def create(
        self, kind: str, body: dict[str, Any], team: str, actor: str
    ) -> dict[str, Any]:
        name = body.get("name")
        if isinstance(name, str):
            self._read_only(kind, name)
        checked = await self._check(kind, body, team)
        item = Item(kind, str(name), team, checked.body, time.time(), actor)
        version = await self._put(item, checked, "create", set(checked.body))
        if version is None:
            raise ConsoleError(409, f"a {kind} named {name!r} exists already: pick another name")
        return self.view(item)

    async def update(
        self, kind: str, name: str, patch: dict[str, Any], teams: Teams, actor: str
    ) -> dict[str, Any]:
        self._read_only(kind, name)
        current = await self._visible(kind, name, teams)
        if "team" in patch and patch["team"] != current.team:
            raise ConsoleError(422, "the team of an item cannot change: remove it and add it anew")
        if patch.get("name", name) != name:
            raise ConsoleError(422, "the name of an item cannot change: remove it and add it anew")
        fields = {key: value for key, value in patch.items() if key != "team"}
        merged = dict(current.body)
        for key, value in unmask(fields, current.body, self._shown(current)).items():
            if value is None:
                merged.pop(key, None)  # JSON merge patch: null removes a field
            else:
                merged[key] = value
        checked = await self._check(kind, merged, current.team)
        changed = {
            k for k in set(merged) | set(current.body) if merged.get(k) != current.body.get(k)
        }
        item = Item(kind, name, current.team, checked.body, time.time(), actor)
        await self._put(item, checked, "update", changed)
        return self.view(item)

    async def delete(self, kind: str, name: str, teams: Teams, actor: str) -> dict[str, Any]:
        self._read_only(kind, name)
        current = await self._visible(kind, name, teams)
        if kind == "channel":
            users = [
                sub.name
                for sub in (await self.store.snapshot()).subscriptions
                if name in sub.body.get("channels", ())
            ]
            if users:
                raise ConsoleError(
                    409,
                    f"channel {name!r} is used by subscription(s) {', '.join(users)}: "
                    "remove it from them first",
                )
        if not await self.store.delete(current, actor=actor):
            raise _not_found(kind, name)  # removed meanwhile
        return {**self.view(current), "deleted": True}

    async def _put(
        self, item: Item, checked: Checked, action: str, changed: set[str]
    ) -> int | None:
        try:
            return await self.store.put(item, checked.secret_fields, action=action, changed=changed)
        except SealError as exc:
            raise ConsoleError(422, str(exc), [str(exc)]) from None

    async def _check(self, kind: str, body: dict[str, Any], team: str) -> Checked:
        if kind == "channel":
            checked = check_channel(body, self.settings)
        else:
            problems = []
            if body.get("team", team) != team:
                problems.append(f"'team' must be {team!r}, the team this subscription is made for")
            checked = check_subscription(
                {**body, "team": team}, self.settings, await self.channels_for(team)
            )
            checked = Checked(checked.body, problems + checked.problems)
        if checked.problems:
            raise ConsoleError(422, f"the {kind} is not valid", checked.problems)
        if checked.secret_fields and not self.store.sealer.can_seal:
            raise ConsoleError(422, NO_KEY, [NO_KEY])
        return checked

    async def channels_for(self, team: str) -> list[ChannelSpec]:
        """The channels a subscription of ``team`` may name: the YAML's and its team's."""
        snapshot = await self.store.snapshot()
        own = [
            ChannelSpec.model_validate(item.body)
            for item in snapshot.channels
            if team == "*" or item.team == team
        ]
        return [*self.settings.channels, *own]

    async def merged(self, teams: Teams) -> Settings:
        """The YAML settings plus the caller's API-defined channels (for a test send)."""
        snapshot = await self.store.snapshot()
        own = [
            ChannelSpec.model_validate(item.body)
            for item in snapshot.channels
            if _allows(teams, item.team)
        ]
        return self.settings.model_copy(update={"channels": [*self.settings.channels, *own]})


def _redactor_of(body: Mapping[str, Any], deps: ChannelDeps) -> Redactor:
    try:
        return channel_redactor(create_channel(ChannelSpec.model_validate(body), deps))
    except Exception:  # a stored body that no longer builds: mask by field names only
        return Redactor()


def _describe(spec: ChannelSpec, deps: ChannelDeps) -> str:
    try:
        return create_channel(spec, deps).describe()
    except Exception:
        return "(does not build)"
