"""Disabling and enabling a channel by hand: the CLI (``eventbus channels``) and the API share it.

Disabling writes the channel's ``ChannelState`` (deliveries to it are then
recorded as skipped); enabling clears it and forgets the channel's circuit,
so it starts closed with nothing counted. Workers pick either up with their
next refresh (within 10 s). Either is noted in the console audit stream
with who did it (``GET /v1/audit``, ``eventbus`` for the CLI).
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from eventbus.keys import Keys

from .console.store import note_audit
from .store import BreakerStore, ChannelState, DeliveryStore

__all__ = ["DEFAULT_REASON", "disable_channel", "enable_channel"]

DEFAULT_REASON = "disabled by an operator"


async def enable_channel(
    redis: aioredis.Redis, keys: Keys, name: str, *, actor: str = "cli", team: str = ""
) -> bool:
    """Clear ``name``'s disabled state and circuit; returns whether it was disabled."""
    store = DeliveryStore(redis, keys)
    was = (await store.channel_states()).get(name)
    await store.enable_channel(name)
    await BreakerStore(redis, keys).reset(name)
    await note_audit(
        redis, keys, actor=actor, team=team, kind="channel", name=name, action="enable"
    )
    return was is not None and was.disabled


async def disable_channel(
    redis: aioredis.Redis,
    keys: Keys,
    name: str,
    reason: str = DEFAULT_REASON,
    *,
    actor: str = "cli",
    team: str = "",
) -> ChannelState:
    """Mark ``name`` disabled with ``reason``; returns the state written."""
    state = ChannelState(True, reason, time.time())
    await DeliveryStore(redis, keys).disable_channel(name, state)
    await note_audit(
        redis, keys, actor=actor, team=team, kind="channel", name=name, action="disable"
    )
    return state
