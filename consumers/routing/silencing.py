"""Silences: operator-set mutes with an expiry, honoured by every worker within a second.

The book holds the silences in force in memory, compiled, by team, so
checking an entry costs a dict lookup when its team has none. ``watch()``
keeps it current: it subscribes to the change notice (``Keys.silences_changed``)
and reloads as soon as one arrives, and every ``refresh`` seconds (1 s) it
reads the version counter and reloads when it moved. Pub/Sub is at most
once (a notice sent while the connection is down is lost), so the poll is
what makes "within a second" a promise; one GET a second per worker is
cheap next to the stream reads. Time-based expiry needs no reload at all:
``apply`` checks each silence's ``ends_at`` against ``now``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

import structlog

from eventbus.settings import Settings

from ..following import Follower
from ..store import DeliveryStatus
from ..store.silences import Silence, SilenceError, SilenceStore, format_time
from ..work import Work
from .silence_rules import SilenceMatcher, matches_all, parse_matchers

__all__ = ["REFRESH", "SilenceBook"]

log = structlog.get_logger("eventbus.silences")

REFRESH: Final = 1.0


@dataclass(frozen=True, slots=True)
class _Compiled:
    silence: Silence
    matchers: tuple[SilenceMatcher, ...]
    reason: str


class SilenceBook:
    """The silences in force, as every worker sees them."""

    def __init__(self, store: SilenceStore | None = None, *, refresh: float = REFRESH) -> None:
        self.store = store
        self.refresh = refresh
        self.version: int | None = None  # of the silences loaded; None before the first load
        self._by_team: dict[str, list[_Compiled]] = {}
        self._channel_types: dict[str, str] = {}
        self._loaded = asyncio.Condition()

    def __repr__(self) -> str:
        return f"SilenceBook({len(self.silences)} silences, version={self.version})"

    def reconfigure(self, settings: Settings) -> None:
        """Channel types for the records (from the configuration)."""
        self._channel_types = {spec.name: spec.kind for spec in settings.channels}

    @property
    def silences(self) -> list[Silence]:
        return [entry.silence for entries in self._by_team.values() for entry in entries]

    def replace(self, silences: Iterable[Silence]) -> None:
        """Hold exactly ``silences`` (one whose matchers do not parse is left out, logged)."""
        by_team: dict[str, list[_Compiled]] = {}
        for silence in silences:
            try:
                matchers = parse_matchers(silence.matchers)
            except SilenceError as exc:
                log.warning("silence.unusable", silence_id=silence.id, error=str(exc))
                continue
            reason = (
                f"silence {silence.id} by {silence.created_by} until "
                f"{format_time(silence.ends_at)}: {silence.comment[:200]}"
            )
            by_team.setdefault(silence.team, []).append(_Compiled(silence, matchers, reason))
        self._by_team = by_team

    def apply(self, work: Work, now: float) -> None:
        """Settle the targets of ``work`` that a silence matches as ``silenced``."""
        event = work.event
        if not self._by_team or event is None:
            return
        for entry in self._by_team.get(event.team_id, ()):
            silence = entry.silence
            if silence.active(now) and matches_all(entry.matchers, event):
                for target in list(work.targets):
                    work.unsent(
                        target,
                        DeliveryStatus.SILENCED,
                        entry.reason,
                        now,
                        refers_to=silence.id,
                        channel_type=self._channel_types.get(target.channel_name, ""),
                    )
                return

    async def load(self) -> None:
        """Read every silence in force from Redis (raises ``BrokerError``)."""
        if self.store is None:
            return
        version, silences = await self.store.load(time.time())
        self.replace(silences)
        if version != self.version:
            log.info("silences.loaded", count=len(silences), version=version)
        self.version = version
        async with self._loaded:
            self._loaded.notify_all()

    async def until_version(self, version: int) -> None:
        """Wait until the book has loaded ``version`` or a later one."""
        async with self._loaded:
            await self._loaded.wait_for(
                lambda: self.version is not None and self.version >= version
            )

    async def watch(self, stopping: asyncio.Event, beat: Callable[[], None] | None = None) -> None:
        """Keep the book current until ``stopping`` is set; Redis errors are retried here.

        The book keeps what it had while Redis cannot be reached (a silence
        still ends on time), so an outage never unmutes anything early.
        """
        if self.store is None:
            return
        store = self.store
        follower = Follower(
            store.redis,
            store.keys.silences_changed,
            what="silences",
            load=self.load,
            stored_version=store.version,
            held_version=lambda: self.version,
            refresh=self.refresh,
        )
        await follower.watch(stopping, beat)
