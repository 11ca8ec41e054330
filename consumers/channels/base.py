"""The small protocol every channel implements, and what it returns.

A channel is given a rendered ``Message`` (and through it the envelope) and
returns a ``SendResult``; it never raises for a failed delivery. The delivery
pipeline records the result, schedules retries and disables channels.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import httpx

from eventbus.envelope import Event
from eventbus.redaction import Redactor
from eventbus.settings import SecuritySettings

__all__ = [
    "AlertNotice",
    "Channel",
    "ChannelDeps",
    "Message",
    "OutcomeClass",
    "Redacting",
    "SendResult",
    "channel_redactor",
    "timed",
]

EXCERPT_BYTES = 512


class OutcomeClass(StrEnum):
    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    # Throttled by us or by the provider: not a failed attempt.
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """The alert a message is about, and what just happened to it.

    Channels read this (never the store): a resolve notice looks different
    (``RESOLVED: ...``, green where a service has colours, how long the alert
    was open, how many events it folded in), and PagerDuty or Opsgenie send
    the matching action with ``dedup_key`` = team + key.
    """

    id: str
    team_id: str
    key: str
    transition: str  # raised | touched | acknowledged | resolved | repeat
    status: str  # firing | acknowledged | resolved
    severity: str
    first_seen: float
    last_seen: float
    count: int
    summary: str
    acknowledged_by: str | None = None
    resolved_at: float | None = None
    reason: str | None = None  # why it resolved (e.g. auto-resolve), or a comment

    @property
    def dedup_key(self) -> str:
        """The key PagerDuty/Opsgenie dedupe on: team and alert key."""
        return f"{self.team_id}:{self.key}"

    @property
    def open_for(self) -> float:
        end = self.resolved_at if self.resolved_at is not None else self.last_seen
        return max(0.0, end - self.first_seen)


class Message:
    """A notification rendered from an envelope for one subscription.

    ``title`` and ``body`` are given, or made on first use by ``render`` (a
    function of the message returning both): channels that post the envelope
    itself, like webhooks, never pay for text they do not send.
    """

    __slots__ = (
        "_body",
        "_render",
        "_title",
        "alert",
        "delivery_id",
        "event",
        "link",
        "subscription",
        "test",
    )

    def __init__(
        self,
        title: str | None = None,
        body: str | None = None,
        *,
        event: Event,
        delivery_id: str,
        subscription: str = "",
        link: str | None = None,
        test: bool = False,
        render: Callable[[Message], tuple[str, str]] | None = None,
        alert: AlertNotice | None = None,
    ) -> None:
        if render is None and (title is None or body is None):
            raise TypeError("Message needs a title and a body, or render")
        self._title = title
        self._body = body
        self._render = render
        self.event = event
        self.delivery_id = delivery_id
        self.subscription = subscription
        self.link = link
        self.test = test
        self.alert = alert  # set when the message is an alert's notification

    def __repr__(self) -> str:
        return (
            f"Message(delivery_id={self.delivery_id!r}, event={self.event.event!r}, "
            f"subscription={self.subscription!r})"
        )

    def _rendered(self) -> tuple[str, str]:
        assert self._render is not None
        self._title, self._body = self._render(self)
        self._render = None
        return self._title, self._body

    @property
    def title(self) -> str:
        return self._title if self._title is not None else self._rendered()[0]

    @property
    def body(self) -> str:
        return self._body if self._body is not None else self._rendered()[1]

    @property
    def text(self) -> str:
        """Title and body as one plain text."""
        return f"{self.title}\n{self.body}" if self.body else self.title


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one attempt did. ``error`` must already be free of secrets."""

    outcome: OutcomeClass
    status: int | None = None
    latency: float = 0.0
    error: str | None = None
    response_excerpt: str | None = None
    retry_after: float | None = None
    # 410 Gone and the like: stop sending to this channel.
    disable_channel: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome is OutcomeClass.DELIVERED


@runtime_checkable
class Channel(Protocol):
    """A delivery target. ``describe()`` is a redacted one-line target."""

    name: str
    type: str

    async def send(self, message: Message) -> SendResult: ...

    def describe(self) -> str: ...


@runtime_checkable
class Redacting(Protocol):
    """A channel that knows its secrets (most do; the console channel has none)."""

    @property
    def redactor(self) -> Redactor: ...


def channel_redactor(channel: Channel) -> Redactor:
    """The secrets ``channel`` masks, empty for one that has none."""
    return channel.redactor if isinstance(channel, Redacting) else Redactor()


@dataclass(slots=True)
class ChannelDeps:
    """What channels are given instead of making their own connections.

    ``http`` is the daemon's ``consumers.outbound.OutboundClient`` in
    production (the HTTP base then hands requests straight to its transport)
    or any ``httpx.AsyncClient``, e.g. on an ``httpx.MockTransport`` in tests.
    """

    http: httpx.AsyncClient
    security: SecuritySettings = field(default_factory=SecuritySettings)
    timeout: float = 15.0
    # Returns an aiosmtplib.SMTP-like client; tests inject their own.
    smtp_factory: Callable[..., Any] | None = None


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    """Run ``call`` and return its result with the seconds it took."""
    start = time.perf_counter()
    result = await call()
    return result, time.perf_counter() - start
