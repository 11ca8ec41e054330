"""The circuit of each channel in Redis, shared by every worker (``consumers.breaker``).

One hash per channel (``Keys.breaker``): ``state`` (closed, half_open,
open), ``until`` (open: the cooldown's end; half_open: the probe's lease),
``cooldown`` (the current one, doubled on each re-open), ``consecutive``
and ``failing_since`` (the current run of failures), ``last_error``,
``last_at``, ``disabled`` and a ring of ten outcome buckets over
``breaker.window`` (``b<n>`` the bucket number a slot holds, ``o<n>`` and
``f<n>`` its successes and failures), so the window is bounded and needs no
cleaning.

Two scripts change it. ``record`` folds a batch of outcomes (in order) and
decides: open on the window's failure ratio or a run of failures, re-open
with a doubled cooldown on a failed probe, close on any success, disable the
channel (its ``ChannelState`` in ``Keys.channel_state``, as for 410 Gone)
once it has failed continuously for ``disable_after`` (no success since the
first failure of the run) and its circuit is open. ``claim`` lets
exactly one caller probe a circuit whose cooldown is over.

The same ``record`` call also counts the batch into the channel's minutes
(``Keys.channel_minutes``), for the dashboard's chart: a ring of
``MINUTE_SLOTS`` (25 h) fields, slot ``minute % MINUTE_SLOTS`` holding
``<minute>:<delivered>:<failed>``; a slot still holding an older minute is
started afresh, so the hash never has more than 1500 fields, and the whole key
expires 25 h after the last attempt. A "failed" attempt is any attempt that
was not delivered: retryable (timeouts, 5xx, 429...) and permanent alike.
Being rate limited, or held back by an open circuit, is no attempt and is
not counted. The minute is the one of the flush (after a commit, or for
successes alone up to ``consumers.breaker.FLUSH_EVERY`` later), and only
channels whose breaker is enabled are counted. The hash holds numbers
only: no error text, no target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, NamedTuple

import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import reply_text, translated
from eventbus.keys import Keys

__all__ = ["MINUTE_SLOTS", "BreakerStore", "Circuit", "CircuitState", "Minute", "Outcomes"]

MINUTE_SLOTS: Final = 1500  # 25 h of minutes
_MINUTES_TTL: Final = MINUTE_SLOTS * 60


class CircuitState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def gauge(self) -> int:
        """The value of ``eventbus_channel_circuit_state``: 0 closed, 1 half-open, 2 open."""
        return _GAUGE[self]


_GAUGE: Final = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


@dataclass(slots=True)
class Circuit:
    """One channel's circuit as last read; ``event`` says what the last ``record`` changed."""

    state: CircuitState = CircuitState.CLOSED
    until: float = 0.0
    cooldown: float = 0.0
    consecutive: int = 0
    failing_since: float | None = None
    last_error: str | None = None
    attempts: int = 0  # in the window
    failures: int = 0
    event: str = ""  # "", opened, reopened, closed, disabled

    @property
    def failure_ratio(self) -> float | None:
        return self.failures / self.attempts if self.attempts else None


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Attempts to one channel, in order, and the thresholds that judge them.

    Each result is ``(successes, "")``, a run of that many successes in a row,
    or ``(0, error)``, one failure: a busy channel's successes cost the script
    one pair per run, not one per attempt.
    """

    channel: str
    results: Sequence[tuple[int, str]]
    min_attempts: int
    failure_ratio: float
    consecutive: int
    cooldown: float
    max_cooldown: float
    disable_after: float  # 0: never
    window: float
    disable_reason: str


class Minute(NamedTuple):
    """One minute of attempts to a channel: its start (unix time), delivered, failed."""

    at: int
    delivered: int
    failed: int


# Shared by both scripts: the window's sums from the bucket ring.
_SUMS: Final = """
local function sums(h, bucket)
  local attempts, failures = 0, 0
  for s = 0, 9 do
    if tonumber(h['b' .. s] or '-100') > bucket - 10 then
      attempts = attempts + tonumber(h['o' .. s]) + tonumber(h['f' .. s])
      failures = failures + tonumber(h['f' .. s])
    end
  end
  return attempts, failures
end
local function load(key)
  local h, raw = {}, redis.call('HGETALL', key)
  for j = 1, #raw, 2 do h[raw[j]] = raw[j + 1] end
  return h
end
"""

# KEYS: 1 channel states. ARGV: now, minutes ring size and ttl, channel count,
# then per channel: key, minutes key, name, min attempts, ratio, consecutive,
# cooldown, max cooldown, disable after, window, disable reason, outcome count,
# then (successes, error) per outcome: a run of that many successes, or (0, error)
# one failure.
_RECORD: Final = (
    _SUMS
    + """
local now, ring, keep, i, out = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], 5, {}
local minute = math.floor(now / 60)
local function nxt() local v = ARGV[i]; i = i + 1; return v end
local function count(key, ok, bad)
  if ok + bad == 0 then return end
  local slot = tostring(minute % ring)
  local held = redis.call('HGET', key, slot)
  if held then
    local at, was_ok, was_bad = string.match(held, '^(%d+):(%d+):(%d+)$')
    if tonumber(at) == minute then ok, bad = ok + tonumber(was_ok), bad + tonumber(was_bad) end
  end
  redis.call('HSET', key, slot, minute .. ':' .. ok .. ':' .. bad)
  redis.call('EXPIRE', key, keep)
end
for _ = 1, tonumber(ARGV[4]) do
  local key, minutes, name = nxt(), nxt(), nxt()
  local least, ratio, run = tonumber(nxt()), tonumber(nxt()), tonumber(nxt())
  local base, most = tonumber(nxt()), tonumber(nxt())
  local span, window = tonumber(nxt()), tonumber(nxt())
  local why = nxt()
  local h = load(key)
  local bucket = math.floor(now / (window / 10))
  local slot = bucket % 10
  if tonumber(h['b' .. slot] or '-100') ~= bucket then
    h['b' .. slot], h['o' .. slot], h['f' .. slot] = bucket, 0, 0
  end
  local state, cooldown = h.state or 'closed', tonumber(h.cooldown or '0')
  local till, consecutive = tonumber(h['until'] or '0'), tonumber(h.consecutive or '0')
  local since, event = h.failing_since or '', ''
  local sent, failed = 0, 0
  for _ = 1, tonumber(nxt()) do
    local ok, err = tonumber(nxt()), nxt()
    if ok > 0 then
      sent = sent + ok
      h['o' .. slot] = tonumber(h['o' .. slot]) + ok
      consecutive, since = 0, ''
      if state ~= 'closed' then
        -- closed afresh: the failures that opened it no longer count
        state, cooldown, till, event = 'closed', 0, 0, 'closed'
        for s = 0, 9 do h['b' .. s], h['o' .. s], h['f' .. s] = -100, 0, 0 end
        h['b' .. slot], h['o' .. slot] = bucket, ok
      end
    else
      failed = failed + 1
      h['f' .. slot] = tonumber(h['f' .. slot]) + 1
      consecutive = consecutive + 1
      if since == '' then since = tostring(now) end
      h.last_error = err
      if state == 'half_open' then
        cooldown = math.min(math.max(cooldown * 2, base), most)
        state, till, event = 'open', now + cooldown, 'reopened'
      end
    end
  end
  count(minutes, sent, failed)
  local attempts, failures = sums(h, bucket)
  if state == 'closed' and (consecutive >= run
      or (attempts >= least and failures >= ratio * attempts)) then
    state, cooldown, till, event = 'open', base, now + base, 'opened'
  end
  -- disabled only while the circuit is open: two failures days apart with
  -- nothing between them are not a receiver that is down
  if state ~= 'closed' and since ~= '' and span > 0 and now - tonumber(since) >= span
      and h.disabled ~= '1' then
    h.disabled, event = '1', 'disabled'
    local reason = why .. (h.last_error or '')
    redis.call('HSET', KEYS[1], name, cjson.encode({disabled = true, reason = reason, at = now}))
  end
  h.state, h.cooldown, h['until'] = state, cooldown, till
  h.consecutive, h.last_at, h.failing_since = consecutive, now, since
  local flat = {}
  for field, value in pairs(h) do flat[#flat + 1] = field; flat[#flat + 1] = value end
  redis.call('HSET', key, unpack(flat))
  redis.call('EXPIRE', key, math.max(span, 86400) * 2)
  out[#out + 1] = {name, state, tostring(till), tostring(cooldown), consecutive, since,
                   h.last_error or '', attempts, failures, event}
end
return out
"""
)

# KEYS: 1 the circuit. ARGV: now, lease. One caller gets 'probe' when the
# cooldown (or a probe's lease) is over; the others see the state and its end.
_CLAIM: Final = """
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local found = redis.call('HMGET', KEYS[1], 'state', 'until')
local state, till = found[1] or 'closed', tonumber(found[2] or '0')
if state == 'closed' then return {'closed', '0'} end
if now >= till then
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'until', now + lease)
  return {'probe', tostring(now + lease)}
end
return {state, tostring(till)}
"""

# The state one read needs (HMGET); the window's buckets follow.
_FIELDS: Final = ("state", "until", "cooldown", "consecutive", "failing_since", "last_error")
_BUCKETS: Final = tuple(f"{kind}{slot}" for slot in range(10) for kind in "bof")


class BreakerStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._record = redis.register_script(_RECORD)
        self._claim = redis.register_script(_CLAIM)

    async def record(self, batches: Sequence[Outcomes], now: float) -> dict[str, Circuit]:
        """Fold the outcomes of each channel; returns every circuit afterwards."""
        args: list[Any] = [now, MINUTE_SLOTS, _MINUTES_TTL, len(batches)]
        for item in batches:
            args += (
                self.keys.breaker(item.channel),
                self.keys.channel_minutes(item.channel),
                item.channel,
                item.min_attempts,
                item.failure_ratio,
                item.consecutive,
                item.cooldown,
                item.max_cooldown,
                item.disable_after,
                item.window,
                item.disable_reason,
                len(item.results),
            )
            for ok, error in item.results:
                args += (ok, error[:500])
        async with translated("record channel outcomes"):
            rows: Any = await self._record(keys=[self.keys.channel_state], args=args)
        return {reply_text(row[0]): _circuit(row[1:]) for row in rows}

    async def claim(self, channel: str, now: float, lease: float) -> tuple[str, float]:
        """``("probe", lease end)`` for the one caller that may probe, else (state, its end)."""
        async with translated("claim a circuit probe"):
            verdict, till = await self._claim(keys=[self.keys.breaker(channel)], args=[now, lease])
        return reply_text(verdict), float(till)

    async def read(self, windows: Mapping[str, float], now: float) -> dict[str, Circuit]:
        """The circuits of the channels (name -> its ``breaker.window``) that have one."""
        channels = list(windows)
        fields = (*_FIELDS, *_BUCKETS)
        async with translated("read circuits"), self.redis.pipeline(transaction=False) as pipe:
            for name in channels:
                pipe.hmget(self.keys.breaker(name), fields)
            replies: list[Any] = await pipe.execute()
        found = {}
        for name, values in zip(channels, replies, strict=True):
            bucket = int(now // (windows[name] / 10))
            texts = (None if value is None else reply_text(value) for value in values)
            raw = dict(zip(fields, texts, strict=True))
            if raw["state"] is None:
                continue
            circuit = Circuit(
                CircuitState(raw["state"]),
                float(raw["until"] or 0),
                float(raw["cooldown"] or 0),
                int(raw["consecutive"] or 0),
                float(raw["failing_since"]) if raw["failing_since"] else None,
                raw["last_error"],
            )
            for slot in range(10):
                if int(raw[f"b{slot}"] or -100) > bucket - 10:
                    failed = int(raw[f"f{slot}"] or 0)
                    circuit.attempts += int(raw[f"o{slot}"] or 0) + failed
                    circuit.failures += failed
            found[name] = circuit
        return found

    async def minutes(self, channel: str, since: float) -> list[Minute]:
        """The channel's counted minutes from ``since`` on, oldest first."""
        async with translated("read channel minutes"):
            raw: Any = await self.redis.hgetall(self.keys.channel_minutes(channel))
        first = int(since // 60)
        found = []
        for value in raw.values():
            at, delivered, failed = (int(part) for part in reply_text(value).split(":"))
            if at >= first:
                found.append(Minute(at * 60, delivered, failed))
        return sorted(found)

    async def reset(self, channel: str) -> None:
        """Forget a channel's circuit (``channels enable``): closed, nothing counted."""
        async with translated("reset circuit"):
            await self.redis.delete(self.keys.breaker(channel))


def _circuit(row: Sequence[Any]) -> Circuit:
    state, till, cooldown, consecutive, since, error, attempts, failures, event = row
    return Circuit(
        CircuitState(reply_text(state)),
        float(till),
        float(cooldown),
        int(consecutive),
        float(since) if reply_text(since) else None,
        reply_text(error) or None,
        int(attempts),
        int(failures),
        reply_text(event),
    )
