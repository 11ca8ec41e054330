"""A local webhook receiver (aiohttp.web on 127.0.0.1) for end-to-end tests."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Sink:
    """Answers from ``script`` (status codes) then ``default``; ``gate`` holds requests."""

    default: int = 204
    script: deque[int] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    gate: asyncio.Event | None = None
    port: int = 0
    _runner: web.AppRunner | None = None
    _waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(request.path, dict(request.headers), body))
        for count, fut in self._waiters:
            if not fut.done() and len(self.received) >= count:
                fut.set_result(None)
        if self.gate is not None:
            await self.gate.wait()
        status = self.script.popleft() if self.script else self.default
        return web.Response(status=status, text="" if status == 204 else "sink says hi")

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        if len(self.received) >= count:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, fut))
        await asyncio.wait_for(fut, timeout)
