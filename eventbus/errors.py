"""The one exception tree of eventbus.

Every error raised on purpose by eventbus derives from ``EventBusError``;
errors of redis, aio-pika, httpx and aiosmtplib are translated where they
enter the code, so callers never need to catch a dependency's exceptions::

    EventBusError
    ├── ConfigError (also ValueError)      bad settings or YAML; carries every problem
    ├── EnvelopeError (also ValueError)    an event that is invalid or cannot be decoded
    ├── CatalogError (also ValueError)     unknown type in strict mode, wrong durability
    ├── BrokerError                        the broker refused or could not be reached
    │   └── BrokerUnavailable              connection refused / timed out
    ├── ChannelConfigError (also ValueError)  a channel definition or URL is unusable
    └── DeliveryError                      a channel send failed
        ├── RetryableDeliveryError         try again later (timeouts, 5xx, 429 ...)
        └── PermanentDeliveryError         retrying will not help (4xx, rejected)

Messages name the thing that is wrong, the offending value (redacted when it
is a secret) and what would fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BrokerError",
    "BrokerUnavailable",
    "CatalogError",
    "ChannelConfigError",
    "ConfigError",
    "ConfigProblem",
    "DeliveryError",
    "EnvelopeError",
    "EventBusError",
    "PermanentDeliveryError",
    "RetryableDeliveryError",
]


class EventBusError(Exception):
    """Root of every error eventbus raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a configuration.

    ``where`` is ``file:line`` when known, else the setting's dotted path.
    """

    where: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


class ConfigError(EventBusError, ValueError):
    """The configuration cannot be used. ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[ConfigProblem] | str) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem("configuration", problems)]
        self.problems: list[ConfigProblem] = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(f"{count} configuration problem{'s' if count != 1 else ''}:\n{lines}")


class EnvelopeError(EventBusError, ValueError):
    """An event envelope is invalid, or bytes could not be decoded into one."""


class CatalogError(EventBusError, ValueError):
    """The catalog does not allow this event type to be published this way."""


class BrokerError(EventBusError):
    """The broker answered with an error."""


class BrokerUnavailable(BrokerError):
    """The broker could not be reached (refused, timed out, connection lost)."""


class ChannelConfigError(EventBusError, ValueError):
    """A channel definition or shoutrrr-style URL is unusable."""


class DeliveryError(EventBusError):
    """A channel could not deliver a message."""


class RetryableDeliveryError(DeliveryError):
    """The delivery may succeed later."""


class PermanentDeliveryError(DeliveryError):
    """The delivery will not succeed by retrying."""
