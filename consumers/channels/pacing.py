"""Rate limiting seen from the channels: the ``Pacer`` they take, the one
refusal they return, and the wrapper that puts a channel behind its limiter.

The buckets themselves live in ``consumers.ratelimit``, which knows nothing
of channels, so the dependency runs one way: channels -> ratelimit.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from eventbus.redaction import Redactor
from eventbus.settings import ChannelSpec

from ..ratelimit import ChannelLimiter, limiter_for
from .base import Channel, Message, OutcomeClass, SendResult, channel_redactor

__all__ = ["NO_PACER", "PacedChannel", "Pacer", "RateLimitedChannel", "rate_limited", "refusal"]


class Pacer(Protocol):
    """Rate limiting seen from a channel (``ratelimit.ChannelLimiter`` implements it)."""

    async def acquire(self, key: str, *, may_refuse: bool) -> float | None:
        """Wait for a slot; or, if ``may_refuse`` and the wait is long, return it."""
        ...

    def penalize(self, key: str, seconds: float) -> None:
        """The provider said 429: pause the bucket(s) for ``seconds``."""
        ...


class _NoPacer:
    async def acquire(self, key: str, *, may_refuse: bool) -> float | None:
        return None

    def penalize(self, key: str, seconds: float) -> None:
        return None


NO_PACER: Pacer = _NoPacer()


@runtime_checkable
class PacedChannel(Protocol):
    """A channel whose requests can be paced one by one."""

    name: str
    type: str

    async def send_paced(self, message: Message, pacer: Pacer) -> SendResult: ...


def refusal(channel: str, wait: float) -> SendResult:
    """Our own limiter said no: reschedule without counting a failed attempt."""
    return SendResult(
        OutcomeClass.RATE_LIMITED,
        retry_after=wait,
        error=f"rate limit of channel {channel!r}: next slot in {wait:.1f}s",
    )


class RateLimitedChannel:
    """A channel behind its limiter. Delegates everything else to the channel."""

    def __init__(self, inner: Channel, limiter: ChannelLimiter) -> None:
        self.inner = inner
        self.limiter = limiter
        self.name = inner.name
        self.type = inner.type

    def __repr__(self) -> str:
        return f"<RateLimited {self.inner!r} {self.limiter.describe()}>"

    def describe(self) -> str:
        return self.inner.describe()

    @property
    def redactor(self) -> Redactor:
        return channel_redactor(self.inner)

    async def send(self, message: Message) -> SendResult:
        if isinstance(self.inner, PacedChannel):
            pacer: Pacer = self.limiter
            return await self.inner.send_paced(message, pacer)
        wait = await self.limiter.acquire("", may_refuse=True)
        if wait is not None:
            return refusal(self.name, wait)
        result = await self.inner.send(message)
        if not result.ok and result.retry_after is not None:
            self.limiter.penalize("", result.retry_after)
        return result


def rate_limited(channel: Channel, spec: ChannelSpec, **kwargs: Any) -> Channel:
    """``channel`` wrapped in its limiter, or unchanged when it has no limit."""
    limiter = limiter_for(spec, channel.type, **kwargs)
    return channel if limiter is None else RateLimitedChannel(channel, limiter)
