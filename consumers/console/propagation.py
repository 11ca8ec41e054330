"""Bringing API-defined channels and subscriptions to every worker within a second.

The same approach as the silences (``consumers.routing.silencing``): the
feed subscribes to the change notice (``Keys.console_changed``) and reloads
as soon as one arrives, and every ``refresh`` seconds it reads the version
counter and reloads when it moved (Pub/Sub is at most once; the poll makes
"within a second" a promise). A reload reads every item at one version
(``ConsoleStore.snapshot``), merges them after the YAML's and hands the whole
set to ``apply`` (the worker's ``reconfigure``, the path SIGHUP takes) in one
call, so deliveries never see half of a change. An item that cannot be used
(its channel does not build, its secrets do not open) is left out and logged;
the rest still applies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Final

import structlog
from pydantic import ValidationError

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec, Settings, SubscriptionSpec

from ..channels.base import Channel
from ..following import Follower
from .store import ConsoleStore, Snapshot

__all__ = ["REFRESH", "ConsoleFeed", "merge"]

log = structlog.get_logger("eventbus.console")

REFRESH: Final = 1.0

Build = Callable[[Settings], Mapping[str, Channel]]
Apply = Callable[[Settings, Mapping[str, Channel]], None]


def merge(base: Settings, snapshot: Snapshot) -> tuple[Settings, list[str]]:
    """``base`` (the YAML) plus the usable items of ``snapshot``, and why others are not."""
    problems = list(snapshot.problems)
    taken = {spec.name for spec in base.channels}
    channels: list[ChannelSpec] = []
    for item in snapshot.channels:
        try:
            spec = ChannelSpec.model_validate(item.body)
        except ValidationError as exc:
            problems.append(f"channel {item.name!r}: {exc.error_count()} invalid field(s)")
            continue
        if spec.name in taken:
            problems.append(f"channel {spec.name!r}: the YAML defines one of that name")
            continue
        taken.add(spec.name)
        channels.append(spec)
    subscriptions: list[SubscriptionSpec] = []
    subscribed = {spec.name for spec in base.subscriptions}
    for item in snapshot.subscriptions:
        try:
            sub = SubscriptionSpec.model_validate({**item.body, "team": item.team})
        except ValidationError as exc:
            problems.append(f"subscription {item.name!r}: {exc.error_count()} invalid field(s)")
            continue
        if sub.name in subscribed:
            problems.append(f"subscription {sub.name!r}: the YAML defines one of that name")
            continue
        subscribed.add(sub.name)
        subscriptions.append(sub)
    update = {
        "channels": [*base.channels, *channels],
        "subscriptions": [*base.subscriptions, *subscriptions],
    }
    return base.model_copy(update=update), problems


class ConsoleFeed:
    """Keeps a worker's channels and subscriptions = YAML + the console's."""

    def __init__(
        self,
        store: ConsoleStore,
        base: Settings,
        build: Build,
        *,
        refresh: float = REFRESH,
    ) -> None:
        self.store = store
        self.base = base
        self.build = build
        self.refresh = refresh
        self.apply: Apply | None = None  # set by the worker to its reconfigure
        self.version: int | None = None
        self._snapshot = Snapshot(0)
        self._base_channels: dict[str, Channel] | None = None
        self._loaded = asyncio.Condition()

    def __repr__(self) -> str:
        return f"ConsoleFeed(version={self.version})"

    def current(self) -> tuple[Settings, Mapping[str, Channel]]:
        """The merged settings and their channels at the version loaded last."""
        settings, problems = merge(self.base, self._snapshot)
        if self._base_channels is None:  # built once per YAML: rate limiters keep their state
            self._base_channels = dict(self.build(self.base))
        channels = dict(self._base_channels)
        for spec in settings.channels[len(self.base.channels) :]:
            alone = settings.model_copy(update={"channels": [spec]})
            try:
                channels.update(self.build(alone))
            except ChannelConfigError as exc:
                problems.append(f"channel {spec.name!r}: {exc}")
        for problem in problems:
            log.warning("console.item_unusable", problem=problem)
        return settings, channels

    def rebase(self, base: Settings) -> None:
        """A reloaded YAML configuration: merge the console's items into it and apply."""
        self.base = base
        self._base_channels = None
        self._apply()

    def _apply(self) -> None:
        if self.apply is not None:
            settings, channels = self.current()
            self.apply(settings, channels)

    async def load(self) -> None:
        """Read every item at one version and apply them (raises ``BrokerError``)."""
        snapshot = await self.store.snapshot()
        self._snapshot = snapshot
        self._apply()
        if snapshot.version != self.version:
            log.info(
                "console.loaded",
                version=snapshot.version,
                channels=len(snapshot.channels),
                subscriptions=len(snapshot.subscriptions),
            )
        self.version = snapshot.version
        async with self._loaded:
            self._loaded.notify_all()

    async def until_version(self, version: int) -> None:
        """Wait until the feed has applied ``version`` or a later one."""
        async with self._loaded:
            await self._loaded.wait_for(
                lambda: self.version is not None and self.version >= version
            )

    async def watch(self, stopping: asyncio.Event, beat: Callable[[], None] | None = None) -> None:
        """Keep current until ``stopping`` is set; Redis errors are retried here.

        While Redis cannot be reached, the worker keeps the set it has.
        """
        follower = Follower(
            self.store.redis,
            self.store.keys.console_changed,
            what="console",
            load=self.load,
            stored_version=self.store.version,
            held_version=lambda: self.version,
            refresh=self.refresh,
        )
        await follower.watch(stopping, beat)
