"""bark, ifttt, join, lark, pushbullet and rocketchat through the whole
pipeline: publish -> worker -> channel -> a local fake provider, on the real
Redis, with the delivery record, a retry and a provider's rate limit."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from consumers.channels.registry import build_channels
from consumers.daemon import make_channel_deps, make_http_client
from consumers.store.records import DeliveryRecord, DeliveryStatus, delivery_id
from consumers.worker import Worker
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import event, subscription

pytestmark = pytest.mark.integration

TOKEN = "o.abcdefghijklmnopqrstuvwxyz012345"
# service -> (URL, path the request goes to, the provider's success answer)
SERVICES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "bark": ("bark://:devkey@bark.example.com", "/push", {"code": 200, "message": "success"}),
    "ifttt": ("ifttt://iftttkey/?events=deploy", "/trigger/deploy/with/key/iftttkey", {}),
    "join": (
        "join://shoutrrr:joinkey@join/?devices=dev1",
        "/_ah/api/messaging/v1/sendPush",
        {"success": True},
    ),
    "lark": (
        "lark://open.larksuite.com/larktoken",
        "/open-apis/bot/v2/hook/larktoken",
        {"code": 0},
    ),
    "pushbullet": (f"pushbullet://{TOKEN}/dev1", "/v2/pushes", {"active": True, "type": "note"}),
    "rocketchat": (
        "rocketchat://chat.example.com/tokA/tokB",
        "/hooks/tokA/tokB",
        {"success": True},
    ),
}


@dataclass
class Provider:
    """A local stand-in for a provider: records requests, answers from ``script``."""

    ok: dict[str, Any] = field(default_factory=dict)
    script: deque[tuple[int, dict[str, Any]]] = field(default_factory=deque)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path, dict(request.query), await request.read()))
        status, body = self.script.popleft() if self.script else (200, self.ok)
        return web.json_response(body, status=status)


@pytest.fixture
async def provider() -> AsyncIterator[tuple[Provider, str]]:
    fake = Provider()
    app = web.Application()
    app.router.add_post("/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def run(
    provider: tuple[Provider, str], redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., Any]]:
    clients = []

    async def go(service: str) -> tuple[Settings, Worker]:
        fake, base = provider
        url, _, fake.ok = SERVICES[service]
        settings = make_settings(
            consumer={"name": "e2e", "retry_jitter": 0, "retry_schedule": ["0s"]},
            security={"allow_private_targets": True},
            channels=[{"name": "svc", "url": url, "api_base": base}],
            subscriptions=[subscription(channels=("svc",))],
        )
        http = make_http_client(settings)
        clients.append(http)
        channels = build_channels(settings, make_channel_deps(settings, http))
        worker = Worker(settings, redis=redis, channels=channels)
        await worker.start()
        return settings, worker

    yield go
    for client in clients:
        await client.aclose()


async def deliver(settings: Settings, redis: aioredis.Redis, worker: Worker) -> DeliveryRecord:
    ev = event(outcome="error", error="disk full")
    async with Publisher(settings, redis=redis) as bus:
        await bus.publish(ev)
    await worker.drain()
    record = await worker.store.get(delivery_id(ev.id, "all", "svc"))
    assert record is not None
    return record


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_delivered_and_recorded(
    service: str, run: Callable[..., Any], provider: tuple[Provider, str], redis: aioredis.Redis
) -> None:
    settings, worker = await run(service)
    record = await deliver(settings, redis, worker)
    fake, _ = provider
    assert record.status is DeliveryStatus.DELIVERED, record.last_error
    assert [(a.number, a.status) for a in record.history] == [(1, 200)]
    [(path, query, body)] = fake.received
    assert path == SERVICES[service][1]
    sent = json.dumps(query) + body.decode()
    assert "capsule.create failed" in sent and "disk full" in sent


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_server_error_is_retried_then_delivered(
    service: str, run: Callable[..., Any], provider: tuple[Provider, str], redis: aioredis.Redis
) -> None:
    fake, _ = provider
    fake.script.append((503, {}))
    settings, worker = await run(service)
    record = await deliver(settings, redis, worker)  # the retry is due at once: drain takes it
    assert record.status is DeliveryStatus.DELIVERED, record.last_error
    assert [(a.number, a.status) for a in record.history] == [(1, 503), (2, 200)]
    assert len(fake.received) == 2


async def test_lark_rate_limit_answer_reschedules_without_a_failed_attempt(
    run: Callable[..., Any], provider: tuple[Provider, str], redis: aioredis.Redis
) -> None:
    fake, _ = provider
    fake.script.append((400, {"code": 9499, "msg": "too many request", "data": {}}))
    settings, worker = await run("lark")
    record = await deliver(settings, redis, worker)
    assert record.status is DeliveryStatus.RETRYING
    assert record.next_attempt_at is not None
    # not a failed attempt; retried after Lark's one-minute window
    assert record.history == []
    assert record.next_attempt_at - time.time() == pytest.approx(60, abs=10)
    assert record.reason == "rate limited"


async def test_join_failure_in_a_200_body_fails_the_delivery(
    run: Callable[..., Any], provider: tuple[Provider, str], redis: aioredis.Redis
) -> None:
    fake, _ = provider
    fake.script.append((200, {"success": False, "errorMessage": "User Not Authenticated"}))
    settings, worker = await run("join")
    record = await deliver(settings, redis, worker)
    assert record.status is DeliveryStatus.FAILED
    assert "User Not Authenticated" in (record.last_error or "")
    assert "joinkey" not in json.dumps(record.to_dict())
