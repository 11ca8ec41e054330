"""Settings of the per-channel circuit breaker (section ``breaker:``).

Here rather than in ``eventbus.settings`` only to keep that module small;
the breaker itself is the daemon's (``consumers.breaker``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .durations import Duration

__all__ = ["BreakerSettings"]


class BreakerSettings(BaseModel):
    """The per-channel circuit breaker (``consumers.breaker``); a channel may override fields."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    min_attempts: int = Field(
        10, ge=1, description="attempts in the window before the ratio counts"
    )
    window: Duration = Field(300.0, gt=0)
    failure_ratio: float = Field(0.7, gt=0, le=1)
    consecutive: int = Field(20, ge=1, description="failures in a row that open the circuit")
    cooldown: Duration = Field(60.0, gt=0, description="first open period; doubles on re-open")
    max_cooldown: Duration = Field(1800.0, gt=0)
    disable_after: Duration | None = Field(
        5 * 86400.0, gt=0, description="failing continuously this long disables the channel"
    )
