"""Alert timers: repeats while firing, and auto-resolves of alerts left untouched.

Both live in one sorted set under the hash tag (``routing.alerts.due_key``),
scored by due time, written by the alert stage with the state:

- ``a`` members: an alert whose event type declares ``auto_resolve`` in the
  catalog, due ``auto_resolve`` after its last event (each touch re-arms it);
- ``r`` members: one per (alert, subscription with ``repeat_interval``), due
  an interval after the raise, then after each repeat.

Any worker fires any timer: ``claim`` leases due members (their score moves
to the end of the lease, in one script), as due retries and digests are
claimed. A fired timer is an action on the alert (``repeat`` or
``auto_resolve``), decided like an event's, atomically and remembered under
a synthetic event id (``auto-resolve:<alert id>``, ``repeat:<alert id>:<sub>:<n>``),
and its notifications go through the pipeline as due retries do (screened:
a notice delivered already is not sent again).

A timer whose transition is new stays leased: if this worker dies before its
notifications are committed, the lease runs out and another worker fires it
again, gets the remembered transition back and sends what was not delivered.
Only then (the transition remembered) is the member removed (auto-resolve)
or moved to the next repeat. A repeat of an acknowledged or resolved alert
is no transition: its member goes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Final

import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import reply_text, translated
from eventbus.durations import format_duration
from eventbus.envelope import EnvelopeLimits, decode
from eventbus.errors import EnvelopeError

from .alerting import Action, Origin, notice, notifies
from .pipeline import Pipeline
from .routing.alerts import AlertBook, Change, Decided, due_key, memo_key, payload_key
from .store import Settlement, delivery_id
from .store.alerts import Alert, AlertStore, Transition
from .work import Target, Work

__all__ = ["AlertTimers"]

# KEYS: the due set; ARGV: now, end of the lease, count. Returns the members leased.
_CLAIM: Final = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
"""


class AlertTimers:
    def __init__(
        self,
        redis: aioredis.Redis,
        book: AlertBook,
        pipeline: Pipeline,
        clock: Callable[[], float],
    ) -> None:
        self.redis = redis
        self.book = book
        self.pipeline = pipeline
        self.clock = clock
        self._claim = redis.register_script(_CLAIM)

    async def fire_due(self, lease: float, count: int) -> int:
        """Claim up to ``count`` due timers and fire them; how many were due."""
        if count < 1:
            return 0
        now = self.clock()
        due = due_key(self.book.keys)
        async with translated("claim alert timers"):
            members: list[Any] = await self._claim(keys=[due], args=[now, now + lease, count])
        for member in members:
            await self._fire(reply_text(member), now)
        return len(members)

    async def open_counts(self, limit: int = 10_000) -> Counter[tuple[str, str, str]]:
        """Open alerts by (team, severity, status), for the ``eventbus_alerts_firing`` gauge."""
        found = await AlertStore(self.redis, self.book.keys).query(limit=limit)
        return Counter(
            (alert.team_id, alert.severity, alert.status.value)
            for alert in found
            if alert.status.open
        )

    async def prune(self, now: float, count: int = 500) -> int:
        """Drop from the alerts index the alerts expired (resolved past ``alerts.retention``)."""
        index = self.book.keys.alerts
        async with translated("prune alerts index"):
            names: list[Any] = await self.redis.zrangebyscore(
                index, "-inf", now - self.book.retention, start=0, num=count
            )
            if not names:
                return 0
            found = await self.redis.mget(names)
            gone = [name for name, raw in zip(names, found, strict=True) if raw is None]
            if gone:
                await self.redis.zrem(index, *gone)
        return len(gone)

    async def _fire(self, member: str, now: float) -> None:
        kind, name, alert_id, subscription = member.split("\x1f")
        async with translated("read alert"):
            raw, payload = await self.redis.mget([name, payload_key(name)])
        alert = Alert.from_json(raw) if raw else None
        if isinstance(payload, str):
            payload = payload.encode()
        if alert is None or alert.id != alert_id or payload is None:
            await self._drop(member)  # expired, or a newer alert of the key
            return
        change = self._change(kind, name, alert, subscription, now)
        if change is None:
            await self._drop(member)
            return
        made: list[tuple[Alert, Transition]] = []
        [done] = await self.book.decide([change], now, made=made)
        await self.book.announce(made)
        if done.transition is None:
            await self._drop(member)
            return
        await self._notify(change, done, payload, subscription)
        if made:
            return  # new: stays leased until it is fired again, remembered (see above)
        if kind == "a":
            await self._drop(member)
        else:
            spec = self.pipeline.dispatcher.subscriptions.get(subscription)
            if spec is None or not spec.repeat_interval:
                await self._drop(member)
                return
            async with translated("schedule alert repeat"):
                await self.redis.zadd(due_key(self.book.keys), {member: now + spec.repeat_interval})

    async def _drop(self, member: str) -> None:
        async with translated("drop alert timer"):
            await self.redis.zrem(due_key(self.book.keys), member)

    def _change(
        self, kind: str, name: str, alert: Alert, subscription: str, now: float
    ) -> Change | None:
        if kind == "a":
            after = self.book.catalog.auto_resolve(alert.event_type)
            if after is None:
                return None
            if alert.status.open and alert.last_seen + after > now:
                return None  # touched since: the stage re-armed it
            event_id = f"auto-resolve:{alert.id}"
            reason = f"auto-resolved: no event for {format_duration(after)}"
            origin = Origin(alert.team_id, alert.key, event_id, now, reason=reason)
            return Change(name, memo_key(self.book.keys, event_id), Action.AUTO_RESOLVE, origin)
        spec = self.pipeline.dispatcher.subscriptions.get(subscription)
        if spec is None or not spec.repeat_interval:
            return None
        # Which repeat this is: the same one when fired again after a lease ran out.
        number = int((now - alert.first_seen) // spec.repeat_interval)
        event_id = f"repeat:{alert.id}:{subscription}:{number}"
        origin = Origin(alert.team_id, alert.key, event_id, now)
        return Change(name, memo_key(self.book.keys, event_id), Action.REPEAT, origin)

    async def _notify(self, change: Change, done: Decided, payload: bytes, only: str) -> None:
        """Send the notice to the subscriptions of the raising event it notifies."""
        dispatcher = self.pipeline.dispatcher
        limits: EnvelopeLimits = dispatcher.limits
        try:
            event = decode(payload, limits)
        except EnvelopeError:
            return  # cannot happen for an envelope decoded before
        assert done.alert is not None and done.transition is not None
        shown = notice(done.alert, done.transition)
        matched, _ = dispatcher.matcher.select(event)
        targets = [
            Target(
                sub,
                channel,
                delivery_id(change.origin.event_id, sub.name, channel),
                0,
                change.origin.at,
                alert=shown,
            )
            for sub in matched
            if notifies(sub, done.transition) and (not only or sub.name == only)
            for channel in dict.fromkeys(sub.channels)
        ]
        if targets:
            work = Work(Settlement(), event, payload, targets)
            async with translated("remember alert notices"), self.redis.pipeline() as pipe:
                self.book.remember_notices(pipe, work, done)
                await pipe.execute()
            await self.pipeline.take_notices([(change.origin.event_id, work)])
