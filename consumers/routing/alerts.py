"""The alert stage: apply alert events to their alerts, atomically, then notify or fold.

Runs last in ``Router.decide``, for every entry of the screened batch whose
event has ``alert`` (with or without targets left: the state follows every
event, notified or not). For the batch it decides each event's transition
(``consumers.alerting.step``) against the shared state in Redis, then per
target either keeps it with its ``AlertNotice`` (the transition notifies the
subscription) or settles it ``folded`` ("folded into alert <id>").

Why the state is written here, before sending, and not in the commit script
with the records (invariant 12 in DESIGN.md): whether an event raises or
touches must be known before anything is sent, and two workers holding two
failures of one key at once must not both see "no alert" and both raise.
Deciding in the commit would be too late for that. So the decision is made
and stored atomically first, and made replayable:

- one optimistic transaction per batch: WATCH the alerts (and the events'
  memos), read them, step every event in batch order, then MULTI/EXEC the new
  states; another worker changing one of them meanwhile aborts the EXEC and
  the batch is decided again on what that worker wrote (bounded attempts);
- each event's transition (and the alert as it was right after) is kept as
  a memo ``{p}:alert-event:<event id>`` written in the same EXEC. An entry
  reclaimed after a crash between that EXEC and its XACK gets the memo back
  instead of stepping again: the raising event raises again (same delivery
  ids, so a delivered raise is screened as a duplicate, an unsent one is sent
  once) and a touch stays a touch. No raise is lost nor sent twice for an
  alert, and the records committed later are the ones the state explains.

The state machine itself lives in one place (the Python one, table-tested),
not a second copy in Lua, which is why this is WATCH/MULTI rather than a
script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc
import structlog

from eventbus.brokers.redis_streams import translated
from eventbus.catalog import ALERT_TRANSITION_TYPES, Catalog
from eventbus.envelope import Event, Outcome, Resource, Severity
from eventbus.errors import BrokerError
from eventbus.keys import Keys
from eventbus.live import live_message
from eventbus.settings import Settings

from ..alerting import Action, Origin, Step, notice, notifies, step
from ..rendering import render
from ..store import DeliveryStatus
from ..store.alerts import Alert, AlertStatus, Transition
from ..work import Work

__all__ = [
    "AlertBook",
    "Decided",
    "due_key",
    "memo_key",
    "payload_key",
    "timer_member",
    "transition_event",
]

log = structlog.get_logger("eventbus.alerts")

# Optimistic attempts per batch before giving up (the batch stays pending).
_ATTEMPTS: Final = 25
# Memos outlive any reclaim of their entry by far.
_MEMO_TTL: Final = 7 * 86400


def memo_key(keys: Keys, event_id: str) -> str:
    """Where the transition an event made is remembered (for a reclaimed entry)."""
    return f"{keys.tag}:alert-event:{event_id}"


def notice_key(keys: Keys, delivery: str) -> str:
    """The transition a notified delivery is about (its retries send the same notice)."""
    return f"{keys.tag}:alert-notice:{delivery}"


def payload_key(name: str) -> str:
    """The envelope that raised the alert stored at ``name`` (repeats and auto-resolves show it)."""
    return f"{name}:event"


def due_key(keys: Keys) -> str:
    """Sorted set of alert timers (repeats, auto-resolves) by due time."""
    return f"{keys.tag}:alerts:due"


@dataclass(frozen=True, slots=True)
class Decided:
    """What one action did: the alert right after it (if any) and the transition."""

    alert: Alert | None
    transition: Transition | None

    def to_json(self) -> bytes:
        alert = self.alert.to_dict() if self.alert is not None else None
        return orjson.dumps({"alert": alert, "transition": self.transition})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Decided:
        data = orjson.loads(raw)
        alert = Alert.from_json(orjson.dumps(data["alert"])) if data["alert"] else None
        return cls(alert, Transition(data["transition"]) if data["transition"] else None)


@dataclass(frozen=True, slots=True)
class Change:
    """One action to apply: on which alert (its key name), and where it comes from."""

    name: str
    memo: str
    action: Action
    origin: Origin


class AlertBook:
    """Alert state in Redis (none without a client: alert events then notify as plain events)."""

    def __init__(self, redis: aioredis.Redis | None = None, keys: Keys | None = None) -> None:
        self.redis = redis
        self.keys = keys or Keys()
        self._channel_types: dict[str, str] = {}
        self.catalog = Catalog()
        self.retention = 7 * 86400.0

    def __repr__(self) -> str:
        return f"AlertBook(prefix={self.keys.prefix!r}, shared={self.redis is not None})"

    def reconfigure(self, settings: Settings) -> None:
        self._channel_types = {spec.name: spec.kind for spec in settings.channels}
        self.catalog = settings.catalog.build()
        self.retention = settings.alerts.retention

    async def apply(self, works: Sequence[Work], now: float) -> list[Transition]:
        """Decide the alert events of ``works`` and notify or fold their targets.

        Returns the transitions this call made (not those a reclaimed entry got
        back from its memo), each announced on the live feed of its team.
        """
        if self.redis is None:
            return []
        todo = [(work, work.event) for work in works if work.event and work.event.alert]
        if not todo:
            return []
        changes = [self.change_of(event, now) for _, event in todo]
        made: list[tuple[Alert, Transition]] = []
        decided = await self.decide(changes, now, [work for work, _ in todo], made)
        for (work, _), done in zip(todo, decided, strict=True):
            self.settle(work, done, now)
        await self.announce(made)
        return [transition for _, transition in made]

    async def announce(self, made: Sequence[tuple[Alert, Transition]]) -> None:
        """Publish each transition as a transient ``eventbus.alert.<transition>`` event."""
        if self.redis is None or not made:
            return
        try:
            async with (
                translated("announce alert transitions"),
                self.redis.pipeline(transaction=False) as pipe,
            ):
                for alert, transition in made:
                    shown = transition_event(alert, transition).to_json()
                    # execute_command: a cluster pipeline blocks its publish() method
                    live = live_message(None, shown)
                    pipe.execute_command("PUBLISH", self.keys.live(alert.team_id), live)
                await pipe.execute()
        except BrokerError as exc:  # the live feed is best effort; the state is written
            log.warning("alert.announce_failed", transitions=len(made), error=str(exc))

    def change_of(self, event: Event, now: float) -> Change:
        assert event.alert is not None and event.alert_action is not None
        name = self.keys.alert(event.team_id, event.alert.key)
        origin = Origin(
            team_id=event.team_id,
            key=event.alert.key,
            event_id=event.id,
            at=event.timestamp.timestamp(),
            severity=event.level.value,
            summary=_summary(event),
            event_type=event.event,
            resource_type=event.resource.type if event.resource else "",
            resource_id=event.resource.id if event.resource else "",
            by=event.actor.name or event.actor.id if event.actor else None,
            reason=event.metadata.get("comment") if event.metadata else None,
        )
        return Change(name, memo_key(self.keys, event.id), Action.of(event.alert_action), origin)

    async def decide(
        self,
        changes: Sequence[Change],
        now: float,
        works: Sequence[Work] = (),
        made: list[tuple[Alert, Transition]] | None = None,
    ) -> list[Decided]:
        """Apply ``changes`` in order, atomically against every other worker."""
        assert self.redis is not None
        names = list(dict.fromkeys(change.name for change in changes))
        memos = [change.memo for change in changes]
        async with translated("decide alerts"):
            for _ in range(_ATTEMPTS):
                async with self.redis.pipeline(transaction=True) as pipe:
                    try:
                        decided, fresh = await self._attempt(
                            pipe, names, memos, changes, now, works
                        )
                    except rexc.WatchError:
                        continue  # another worker changed one of them: decide again
                if made is not None:
                    made += [(d.alert, d.transition) for d in fresh if d.alert and d.transition]
                return decided
        raise BrokerError(
            f"alert state of {len(names)} alert(s) kept changing under this worker "
            f"({_ATTEMPTS} attempts); the batch stays pending and is decided again"
        )

    async def _attempt(
        self,
        pipe: Any,
        names: list[str],
        memos: list[str],
        changes: Sequence[Change],
        now: float,
        works: Sequence[Work],
    ) -> tuple[list[Decided], list[Step]]:
        await pipe.watch(*names, *memos)
        state: dict[str, Alert | None] = {
            name: Alert.from_json(raw) if raw else None
            for name, raw in zip(names, await _mget(pipe, names), strict=True)
        }
        remembered = await _mget(pipe, memos)
        out: list[Decided] = []
        changed: dict[str, Alert] = {}
        fresh: list[tuple[int, Change, Step]] = []
        this_batch: dict[str, Decided] = {}  # an event twice in one batch steps once
        for index, (change, memo) in enumerate(zip(changes, remembered, strict=True)):
            if memo or change.memo in this_batch:
                out.append(this_batch.get(change.memo) or Decided.from_json(memo))
                continue
            done = step(state[change.name], change.action, change.origin)
            if done.transition is not None and done.alert is not None:
                state[change.name] = changed[change.name] = done.alert
            out.append(this_batch.setdefault(change.memo, Decided(done.alert, done.transition)))
            fresh.append((index, change, done))
        pipe.multi()
        for index, change, done in fresh:
            pipe.set(change.memo, out[index].to_json(), ex=max(_MEMO_TTL, int(self.retention)))
            if done.alert is not None and done.transition is not None:
                events = self.keys.alert_events(done.alert.id)
                pipe.zadd(events, {change.origin.event_id: change.origin.at})
                work = works[index] if works else None
                self._timers(pipe, change.name, done, work, now)
                if work is not None:
                    self.remember_notices(pipe, work, out[index])
        for name, alert in changed.items():
            self._write(pipe, name, alert)
        await pipe.execute()
        return out, [done for _, _, done in fresh]

    def remember_notices(self, pipe: Any, work: Work, done: Decided) -> None:
        """Keep the transition of each target it notifies, for that delivery's retries."""
        if done.transition is None:
            return
        ttl = max(_MEMO_TTL, int(self.retention))
        for target in work.targets:
            if notifies(target.subscription, done.transition):
                pipe.set(notice_key(self.keys, target.id), done.to_json(), ex=ttl)

    async def restore(self, works: Sequence[Work]) -> None:
        """Give retried targets of alert events the notice their first attempt had."""
        targets = [
            target for work in works if work.event and work.event.alert for target in work.targets
        ]
        if self.redis is None or not targets:
            return
        async with translated("read alert notices"):
            found = await self.redis.mget([notice_key(self.keys, t.id) for t in targets])
        for target, raw in zip(targets, found, strict=True):
            if raw:
                done = Decided.from_json(raw)
                if done.alert is not None and done.transition is not None:
                    target.alert = notice(done.alert, done.transition)

    def _write(self, pipe: Any, name: str, alert: Alert) -> None:
        resolved = alert.status is AlertStatus.RESOLVED
        ttl = max(1, round(self.retention)) if resolved else None
        pipe.set(name, alert.to_json(), ex=ttl)
        pipe.zadd(self.keys.alerts, {name: alert.last_seen})
        if resolved:
            pipe.expire(self.keys.alert_events(alert.id), ttl)
            pipe.expire(payload_key(name), ttl)

    def _timers(self, pipe: Any, name: str, done: Step, work: Work | None, now: float) -> None:
        """Schedule the auto-resolve of an alert (re-armed by each touch) and its repeats."""
        alert, due = done.alert, due_key(self.keys)
        assert alert is not None
        after = self.catalog.auto_resolve(alert.event_type)
        if after and alert.status.open:
            pipe.zadd(due, {timer_member("a", name, alert.id): alert.last_seen + after})
        if done.transition is not Transition.RAISED or work is None:
            return
        pipe.set(payload_key(name), work.payload)
        for target in work.targets:
            spec = target.subscription
            if spec.repeat_interval and notifies(spec, Transition.REPEAT):
                member = timer_member("r", name, alert.id, spec.name)
                pipe.zadd(due, {member: now + spec.repeat_interval})

    def settle(self, work: Work, done: Decided, now: float) -> None:
        """Keep the targets this transition notifies (with their notice); fold the others."""
        alert, transition = done.alert, done.transition
        for target in list(work.targets):
            spec = target.subscription
            if alert is not None and transition is not None and notifies(spec, transition):
                target.alert = notice(alert, transition)
                continue
            if alert is None or transition is None:
                assert work.event is not None and work.event.alert is not None
                action = work.event.alert_action
                reason = f"no open alert {work.event.alert.key!r} to {action}: recorded, not sent"
            else:
                reason = f"folded into alert {alert.id} ({transition.value}, count {alert.count})"
            work.unsent(
                target,
                DeliveryStatus.FOLDED,
                reason,
                now,
                refers_to=alert.id if alert is not None else None,
                channel_type=self._channel_types.get(target.channel_name, ""),
            )


def transition_event(alert: Alert, transition: Transition) -> Event:
    """The transient event announcing ``transition`` of ``alert`` on its team's live feed."""
    return Event(
        event=ALERT_TRANSITION_TYPES[transition.value],
        outcome=Outcome.SUCCESS if alert.status is AlertStatus.RESOLVED else Outcome.ERROR,
        severity=Severity(alert.severity) if alert.severity in _SEVERITIES else None,
        team_id=alert.team_id,
        resource=Resource(type="alert", id=alert.key),
        metadata={
            "alert_id": alert.id,
            "status": alert.status.value,
            "count": str(alert.count),
            "summary": alert.summary[:200],
        },
    )


_SEVERITIES = frozenset(level.value for level in Severity)


def timer_member(kind: str, name: str, alert_id: str, subscription: str = "") -> str:
    """A due-set member: ``a`` (auto-resolve) or ``r`` (repeat for ``subscription``)."""
    return "\x1f".join((kind, name, alert_id, subscription))


def _summary(event: Event) -> str:
    # The default title of the raising event (a subscription's template may differ).
    return render(event, None, "").title[:300]


async def _mget(pipe: Any, names: Sequence[str]) -> Any:
    # MGET of watched keys (one slot); a cluster pipeline blocks its mget()
    # method, not the command.
    return await pipe.execute_command("MGET", *names)
