"""In-memory fakes for worker tests: a scriptable channel and settings helpers."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from consumers.channels.base import Message, OutcomeClass, SendResult
from eventbus.envelope import Event

DELIVERED = SendResult(OutcomeClass.DELIVERED, status=200)


class FakeChannel:
    """Records every message; answers from a script (then ``default``)."""

    type = "fake"

    def __init__(self, name: str = "fake", *script: SendResult | BaseException) -> None:
        self.name = name
        self.script: deque[SendResult | BaseException] = deque(script)
        self.default: SendResult = DELIVERED
        self.sent: list[Message] = []
        self.gate: asyncio.Event | None = None  # when set, send() waits for it
        self.started = asyncio.Event()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def describe(self) -> str:
        return f"fake {self.name}"

    async def send(self, message: Message) -> SendResult:
        self.sent.append(message)
        self.started.set()
        self._wake()
        if self.gate is not None:
            await self.gate.wait()
        answer = self.script.popleft() if self.script else self.default
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def _wake(self) -> None:
        for check, fut in list(self._waiters):
            if not fut.done() and check():
                fut.set_result(None)

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` messages were sent."""
        if len(self.sent) >= count:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((lambda: len(self.sent) >= count, fut))
        await asyncio.wait_for(fut, timeout)


def event(**overrides: Any) -> Event:
    data: dict[str, Any] = {
        "event": "capsule.create",
        "outcome": "success",
        "team_id": "team-1",
        "actor": {"type": "user", "id": "u1"},
        "resource": {"type": "capsule", "id": "c1"},
    }
    data.update(overrides)
    return Event.model_validate(data)


def subscription(
    name: str = "all", channels: tuple[str, ...] = ("fake",), **kw: Any
) -> dict[str, Any]:
    return {"name": name, "team": "*", "events": ["*"], "channels": list(channels), **kw}


def channel_spec(name: str = "fake", **kw: Any) -> dict[str, Any]:
    return {"name": name, "type": "console", **kw}
