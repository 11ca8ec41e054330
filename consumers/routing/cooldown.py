"""Cooldowns: at most one notification per key per window, shared by every worker.

A subscription with ``cooldown: 1h`` sends at most one notification per
cooldown key an hour. The key is the subscription's name and the values of
its ``cooldown_key`` paths in the event (default ``team, event, resource``),
held in Redis as ``{p}:cooldown:<subscription>:<values as JSON>``.

Per screened read batch, one script call does ``SET key owner NX PX window``
for every target of a cooldown subscription, in the batch's order. The owner
is the event id and the subscription, so:

- the first event of a key in a window takes it and is sent; the others
  (in this batch, later batches, other workers) are settled ``suppressed``,
  with a reason naming the key and until when, and ``refers_to`` the
  delivery that holds the window;
- another channel of the same subscription and event finds its own owner
  and is sent too (one notification goes to every channel of the
  subscription);
- an entry reclaimed after a crash between reserving and committing finds
  its own reservation and proceeds: no notification is lost and none is
  sent twice for the window.

The reservation is not undone when the notification then fails: the window
counts notifications attempted, as Alertmanager's repeat interval does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson
import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import reply_text, translated
from eventbus.durations import format_duration
from eventbus.envelope import Event
from eventbus.keys import Keys
from eventbus.paths import values_of
from eventbus.settings import Settings, SubscriptionSpec

from ..store import DeliveryStatus, delivery_id
from ..store.silences import format_time
from ..work import Target, Work

__all__ = ["Cooldowns", "cooldown_key", "cooldown_owner", "describe_key"]

# KEYS: cooldown keys; ARGV: owner, window (ms) per key, in order.
# Returns per key: "" (proceed) or the owner holding it and its PTTL (ms).
_RESERVE: Final = """
local out = {}
for i, key in ipairs(KEYS) do
  local owner, window = ARGV[2 * i - 1], ARGV[2 * i]
  local holder = owner
  if not redis.call('SET', key, owner, 'NX', 'PX', window) then
    holder = redis.call('GET', key)
  end
  if holder == owner then
    out[#out + 1] = ''
    out[#out + 1] = 0
  else
    out[#out + 1] = holder
    out[#out + 1] = redis.call('PTTL', key)
  end
end
return out
"""


def cooldown_key(spec: SubscriptionSpec, event: Event) -> str:
    """The cooldown key's value part: the ``cooldown_key`` values, as a JSON list."""
    return orjson.dumps(values_of(event, spec.cooldown_key)).decode()


def describe_key(spec: SubscriptionSpec, event: Event) -> str:
    """The key as people read it: ``pager[team=team-1, event=host.down, ...]``."""
    values = values_of(event, spec.cooldown_key)
    pairs = ", ".join(
        f"{path}={'<absent>' if value is None else value}"
        for path, value in zip(spec.cooldown_key, values, strict=True)
    )
    return f"{spec.name}[{pairs}]"


def cooldown_owner(event: Event, spec: SubscriptionSpec) -> str:
    """Who holds a window: this event for this subscription (whatever the channel)."""
    return f"{event.id} {spec.name}"


class Cooldowns:
    """Cooldown windows in Redis (none without a client: nothing is suppressed then).

    Redis errors are not failed open: ``apply`` raises ``BrokerError``, the
    pipeline releases the batch and its entries stay pending for this worker
    (or another) to take again. Failing open would send what the window
    forbids, and for nothing: the records and the XACK of that batch go to
    the same Redis, so a batch sent while Redis fails cannot be committed
    anyway; it would be reclaimed and its cooldown decided again.
    """

    def __init__(self, redis: aioredis.Redis | None = None, keys: Keys | None = None) -> None:
        self.keys = keys or Keys()
        self._reserve = redis.register_script(_RESERVE) if redis is not None else None
        self._channel_types: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Cooldowns(prefix={self.keys.prefix!r}, shared={self._reserve is not None})"

    def reconfigure(self, settings: Settings) -> None:
        """Channel types for the records (from the configuration)."""
        self._channel_types = {spec.name: spec.kind for spec in settings.channels}

    async def apply(self, works: Sequence[Work], now: float) -> None:
        """Settle targets inside their subscription's cooldown window as ``suppressed``."""
        if self._reserve is None:
            return
        asked: list[tuple[Work, Target]] = []
        keys: list[str] = []
        args: list[Any] = []
        for work in works:
            event = work.event
            if event is None:
                continue
            for target in work.targets:
                spec = target.subscription
                if spec.cooldown is None:
                    continue
                asked.append((work, target))
                keys.append(self.keys.cooldown(spec.name, cooldown_key(spec, event)))
                args += [cooldown_owner(event, spec), max(1, round(spec.cooldown * 1000))]
        if not asked:
            return
        async with translated("reserve cooldown windows"):
            reply: list[Any] = await self._reserve(keys=keys, args=args)
        for index, (work, target) in enumerate(asked):
            holder, ttl_ms = reply_text(reply[2 * index]), int(reply[2 * index + 1])
            if holder:
                self._suppress(work, target, holder, ttl_ms, now)

    def _suppress(self, work: Work, target: Target, holder: str, ttl_ms: int, now: float) -> None:
        assert work.event is not None
        spec = target.subscription
        assert spec.cooldown is not None
        holder_event = holder.partition(" ")[0]
        until = "no end (the key has no expiry)" if ttl_ms < 0 else format_time(now + ttl_ms / 1000)
        reason = (
            f"cooldown {describe_key(spec, work.event)}: one notification per "
            f"{format_duration(spec.cooldown)}, suppressed until {until} "
            f"(event {holder_event} holds the window)"
        )
        work.unsent(
            target,
            DeliveryStatus.SUPPRESSED,
            reason,
            now,
            refers_to=delivery_id(holder_event, spec.name, target.channel_name),
            channel_type=self._channel_types.get(target.channel_name, ""),
        )
