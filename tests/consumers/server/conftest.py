"""A real uvicorn server on 127.0.0.1:0, httpx clients and an SSE line reader."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from consumers.health import Health
from consumers.metrics import Metrics
from consumers.server import HttpServer
from eventbus.envelope import Event
from eventbus.settings import Settings
from publishers.client import Publisher

TOKENS = [
    {"name": "team-a", "token": "secret-token-a", "teams": ["team-a"], "role": "operate"},
    {"name": "team-b", "token": "secret-token-b", "teams": ["team-b"], "role": "operate"},
    {"name": "ops", "token": "secret-token-admin", "teams": ["*"], "role": "operate"},
    # role read (the default): looks, never changes anything
    {"name": "viewer-a", "token": "secret-token-read-a", "teams": ["team-a"]},
]
TOKEN_A, TOKEN_B, TOKEN_ADMIN, TOKEN_READ_A = (t["token"] for t in TOKENS)
# In CI a missing browser fails the browser tests instead of skipping them.
REQUIRE_BROWSER = bool(os.environ.get("CI") or os.environ.get("EVENTBUS_REQUIRE_BROWSER"))


def event(
    team: str = "team-a",
    type_: str = "capsule.create",
    outcome: str | None = "success",
    resource: str = "c1",
    **extra: Any,
) -> Event:
    return Event(
        event=type_,
        outcome=outcome,
        team_id=team,
        resource={"id": resource, "type": type_.split(".")[0]},
        **extra,
    )


@dataclass
class Sse:
    event: str = "message"
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


class SseReader:
    """Reads one SSE response message by message (comments included)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, timeout: float = 5.0) -> Sse:
        async with asyncio.timeout(timeout):
            msg, seen = Sse(), False
            data: list[str] = []
            async for line in self._lines:
                if line == "":
                    if seen:
                        msg.data = "\n".join(data)
                        return msg
                    continue
                seen = True
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    msg.comments.append(value)
                elif name == "event":
                    msg.event = value
                elif name == "id":
                    msg.id = value
                elif name == "data":
                    data.append(value)
                elif name == "retry":
                    msg.retry = int(value)
            raise EOFError("the stream ended")

    async def message(self, timeout: float = 5.0) -> Sse:
        """The next message that is not only a comment (heartbeats are skipped)."""
        while True:
            msg = await self.next(timeout)
            if msg.data or msg.event != "message":
                return msg

    async def connected(self) -> Sse:
        msg = await self.next()
        assert "connected" in msg.comments, msg
        return msg


@dataclass
class Running:
    server: HttpServer
    settings: Settings
    health: Health
    metrics: Metrics
    client: httpx.AsyncClient
    publisher: Publisher
    stack: AsyncExitStack

    @property
    def url(self) -> str:
        return self.server.url

    async def stream(self, token: str | None, **params: str) -> SseReader:
        """Open ``/v1/events/stream``; returns once the server sent "connected"."""
        if token is not None:
            params["token"] = token
        response = await self.stack.enter_async_context(
            self.client.stream(
                "GET", "/v1/events/stream", params=params, timeout=httpx.Timeout(10.0)
            )
        )
        assert response.status_code == 200, (response.status_code, await response.aread())
        reader = SseReader(response)
        await reader.connected()
        return reader


StartServer = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_server(
    make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> AsyncIterator[StartServer]:
    """Start servers on the test's Redis and prefix; all are stopped after the test."""
    async with AsyncExitStack() as outer:

        async def start(
            *,
            health: Health | None = None,
            client: aioredis.Redis | None = None,
            sections: dict[str, Any] | None = None,
            **http: Any,
        ) -> Running:
            """``http`` goes into the http section; ``sections`` are the others (YAML)."""
            settings = make_settings(http={"port": 0, "tokens": TOKENS, **http}, **(sections or {}))
            health = health or Health()
            health.set_ready(None)
            metrics = Metrics()
            server = HttpServer(settings, redis=client or redis, health=health, metrics=metrics)
            stack = AsyncExitStack()
            await outer.enter_async_context(stack)
            await server.start()
            stack.push_async_callback(server.stop)
            http_client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.url, timeout=10.0)
            )
            publisher = await stack.enter_async_context(Publisher(settings))
            return Running(server, settings, health, metrics, http_client, publisher, stack)

        yield start
