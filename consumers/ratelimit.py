"""Token buckets per channel (and per Telegram chat), with provider defaults.

Each bucket is a GCRA ("virtual scheduling") token bucket: ``rate`` tokens
per ``per`` seconds, at most ``burst`` at once. A send reserves a slot; if
the slot is close (``MAX_WAIT`` seconds or less) it waits for it, otherwise
it does not call the service at all and returns ``RATE_LIMITED`` with the
wait as ``retry_after``: the pipeline reschedules the delivery without
counting a failed attempt. Once a message's first request is admitted, its
remaining requests (Telegram parts, further chats) wait as long as needed,
so a message is never half sent because of our own limiter.

This module knows buckets, not channels: ``consumers.channels.pacing`` puts a
channel behind its limiter and builds the refusal.

A provider 429 pauses the bucket for its ``retry_after`` and then lets
requests through one interval apart (no burst right after being throttled).

Several buckets (a bot and a chat) are reserved together at the same
instant, so each one sees exactly the times requests are made: that is what
keeps every bucket within ``burst + rate * window`` over any window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from eventbus.settings import ChannelSpec, RateLimitSpec

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_WAIT",
    "Bucket",
    "BucketSpec",
    "ChannelLimiter",
    "limiter_for",
]

# A send may wait this long for its slot; beyond it, it is rescheduled.
MAX_WAIT = 2.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """``rate`` tokens every ``per`` seconds, ``burst`` at most at once."""

    rate: float
    per: float = 1.0
    burst: int = 1

    @classmethod
    def from_settings(cls, spec: RateLimitSpec) -> BucketSpec:
        burst = spec.burst if spec.burst is not None else max(1, int(spec.rate))
        return cls(rate=spec.rate, per=float(spec.per), burst=burst)

    @property
    def interval(self) -> float:
        return self.per / self.rate

    def __str__(self) -> str:
        return f"{self.rate:g}/{self.per:g}s burst {self.burst}"


# type -> (channel-wide bucket, per-key bucket). Telegram: ~30 messages/s per
# bot and ~1/s per chat (short bursts tolerated); Discord: 5 per 2 s per webhook.
DEFAULT_LIMITS: dict[str, tuple[BucketSpec | None, BucketSpec | None]] = {
    "telegram": (BucketSpec(30, 1.0, 30), BucketSpec(1, 1.0, 3)),
    "discord": (BucketSpec(5, 2.0, 5), None),
    # Lark/Feishu custom bots: 100 per minute and 5 per second per bot.
    "lark": (BucketSpec(90, 60.0, 5), None),
    # No published per-second limit (Pushbullet counts an hourly budget and
    # answers 429 with X-Ratelimit-Reset; Bark, IFTTT, Join and Rocket.Chat
    # publish none): a conservative 1/s with bursts of 5.
    "bark": (BucketSpec(1, 1.0, 5), None),
    "ifttt": (BucketSpec(1, 1.0, 5), None),
    "join": (BucketSpec(1, 1.0, 5), None),
    "pushbullet": (BucketSpec(1, 1.0, 5), None),
    "rocketchat": (BucketSpec(1, 1.0, 5), None),
    # Provider limits, kept under with rate * window + burst: WeCom 20 a minute per
    # bot, Zulip 200 a minute per user, PagerDuty 120 events a minute per key.
    "wecom": (BucketSpec(18, 60.0, 2), None),
    "zulip": (BucketSpec(180, 60.0, 20), None),
    "pagerduty": (BucketSpec(110, 60.0, 10), None),
    # No published number: Opsgenie's limits depend on the plan; Signal rate limits
    # accounts unannounced. Conservative defaults (override with rate_limit:).
    "opsgenie": (BucketSpec(2, 1.0, 10), None),
    "signal": (BucketSpec(1, 1.0, 5), None),
}


class Bucket:
    """One GCRA bucket. ``tat`` is the theoretical arrival time of the next token."""

    def __init__(self, spec: BucketSpec, clock: Clock) -> None:
        self.spec = spec
        self._interval = spec.interval
        self._tolerance = (spec.burst - 1) * self._interval
        self._tat = clock()

    def delay(self, now: float) -> float:
        """Seconds until a request made now would conform."""
        return max(0.0, self._tat - self._tolerance - now)

    def reserve(self, at: float) -> None:
        """Record a request made at ``at`` (which must be >= now + delay(now))."""
        self._tat = max(self._tat, at) + self._interval

    def pause(self, until: float) -> None:
        """Nothing before ``until``; then one request per interval, no burst."""
        self._tat = max(self._tat, until + self._tolerance)


class ChannelLimiter:
    """The buckets of one channel; implements ``channels.pacing.Pacer``."""

    def __init__(
        self,
        channel: BucketSpec | None,
        per_key: BucketSpec | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.max_wait = max_wait
        self.channel_spec = channel
        self.key_spec = per_key
        self._channel = Bucket(channel, clock) if channel else None
        self._keys: dict[str, Bucket] = {}

    def describe(self) -> str:
        parts = []
        if self.channel_spec:
            parts.append(str(self.channel_spec))
        if self.key_spec:
            parts.append(f"{self.key_spec} per chat")
        return ", ".join(parts) or "unlimited"

    def _buckets(self, key: str) -> list[Bucket]:
        buckets = [self._channel] if self._channel else []
        if key and self.key_spec is not None:
            bucket = self._keys.get(key)
            if bucket is None:
                bucket = self._keys[key] = Bucket(self.key_spec, self._clock)
            buckets.append(bucket)
        return buckets

    def reserve(self, key: str, *, may_refuse: bool) -> tuple[bool, float]:
        """(admitted, wait). Admitted: the slot is reserved ``wait`` seconds from now."""
        now = self._clock()
        buckets = self._buckets(key)
        wait = max((b.delay(now) for b in buckets), default=0.0)
        if may_refuse and wait > self.max_wait:
            return False, wait
        for bucket in buckets:
            bucket.reserve(now + wait)
        return True, wait

    async def acquire(self, key: str, *, may_refuse: bool) -> float | None:
        admitted, wait = self.reserve(key, may_refuse=may_refuse)
        if not admitted:
            return wait
        if wait > 0:
            await self._sleep(wait)
        return None

    def penalize(self, key: str, seconds: float) -> None:
        until = self._clock() + max(0.0, seconds)
        bucket = self._keys.get(key) if key else None
        target = bucket or self._channel
        if target is not None:
            target.pause(until)


def limiter_for(
    spec: ChannelSpec,
    kind: str,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> ChannelLimiter | None:
    """The limiter a channel gets: ``rate_limit:`` from YAML, else the provider default."""
    channel, per_key = DEFAULT_LIMITS.get(kind, (None, None))
    if spec.rate_limit is not None:
        channel = BucketSpec.from_settings(spec.rate_limit)
    if channel is None and per_key is None:
        return None
    return ChannelLimiter(channel, per_key, clock=clock, sleep=sleep)
