"""Liveness and readiness of a worker process.

Loops call ``beat(name)`` as they go round; ``/healthz`` fails when one has
not beaten within its allowance (stuck), ``/readyz`` reports what readiness
checks last said.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Health"]


@dataclass
class Health:
    clock: Callable[[], float] = time.monotonic
    _beats: dict[str, tuple[float, float]] = field(default_factory=dict)
    ready_reason: str | None = "starting"

    def beat(self, loop: str, allowance: float = 60.0) -> None:
        """Record that ``loop`` is alive; it is stuck if silent past ``allowance`` s."""
        self._beats[loop] = (self.clock(), allowance)

    def forget(self, loop: str) -> None:
        self._beats.pop(loop, None)

    def stuck(self) -> list[str]:
        now = self.clock()
        return sorted(name for name, (at, allow) in self._beats.items() if now - at > allow)

    @property
    def alive(self) -> bool:
        return not self.stuck()

    def set_ready(self, reason: str | None) -> None:
        """``None`` means ready; otherwise the reason it is not."""
        self.ready_reason = reason
