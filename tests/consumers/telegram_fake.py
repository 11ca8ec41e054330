"""A fake Telegram Bot API server on 127.0.0.1 (aiohttp.web), for channel and e2e tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

TOKEN = "123456789:AAE-secretpart_XYZ0123456789"


class FakeBotApi:
    """Answers sendMessage like Telegram; scripted answers come first."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, Any]]] = []
        self.got = asyncio.Event()

    async def send_message(self, request: web.Request) -> web.Response:
        assert request.match_info["token"] == TOKEN
        payload = await request.json()
        self.received.append(payload)
        self.got.set()
        if self.script:
            status, body = self.script.pop(0)
            return web.json_response(body, status=status)
        return web.json_response({"ok": True, "result": {"message_id": len(self.received)}})


@asynccontextmanager
async def serve_fake_bot_api() -> AsyncIterator[tuple[FakeBotApi, str]]:
    """The fake and its base URL (the channel's ``api_base``)."""
    fake = FakeBotApi()
    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", fake.send_message)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield fake, f"http://{host}:{port}"
    finally:
        await runner.cleanup()
