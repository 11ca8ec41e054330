"""Signal, WeCom, Zulip, PagerDuty and Opsgenie through the whole pipeline.

Publish -> worker -> the real channel on the production HTTP client -> a local
fake of the provider (aiohttp on 127.0.0.1), on the real Redis: a delivered
record, a permanent failure recorded with the provider's reason (and no
secret), and a provider 429 with Retry-After rescheduled without counting a
failed attempt.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

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

PD_KEY = "eb243592faa24ba2a5511afdf565c889"
SECRET = "s3cr3t-provider-key-0123456789"


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Provider:
    """One service: its URL, the path it posts to, how it says ok / no / slow down."""

    url: str
    path: str
    ok: Answer
    refused: Answer
    reason: str


PROVIDERS = {
    "signal": Provider(
        f"signal://signal.example.com/+15551234567/+15557654321?token={SECRET}",
        "/v2/send",
        Answer(201, {"timestamp": 1}),
        Answer(400, {"error": "Invalid account (not registered)"}),
        "HTTP 400",
    ),
    "wecom": Provider(
        f"wecom://{SECRET}",
        "/cgi-bin/webhook/send",
        Answer(200, {"errcode": 0, "errmsg": "ok"}),
        Answer(200, {"errcode": 93000, "errmsg": "invalid webhook url"}),
        "errcode 93000: invalid webhook url",
    ),
    "zulip": Provider(
        f"zulip://bot%40example.com:{SECRET}@example.zulipchat.com/?stream=ops",
        "/api/v1/messages",
        Answer(200, {"result": "success", "id": 7}),
        Answer(401, {"result": "error", "msg": "Invalid API key", "code": "INVALID_API_KEY"}),
        "Invalid API key",
    ),
    "pagerduty": Provider(
        f"pagerduty:///{PD_KEY}",
        "/v2/enqueue",
        Answer(202, {"status": "success", "message": "Event processed", "dedup_key": "x"}),
        Answer(400, {"status": "invalid event", "message": "Event object is invalid"}),
        "Event object is invalid",
    ),
    "opsgenie": Provider(
        f"opsgenie://api.eu.opsgenie.com/{SECRET}?responders=team:NOC",
        "/v2/alerts",
        Answer(202, {"result": "Request will be processed", "requestId": "r1"}),
        Answer(401, {"message": "Key format is not valid!", "took": 0.0}),
        "Key format is not valid!",
    ),
}


@dataclass
class FakeProvider:
    """Answers from ``script``, then ``default``; keeps what it received."""

    default: Answer
    script: deque[Answer] = field(default_factory=deque)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path_qs, dict(request.headers), await request.read()))
        answer = self.script.popleft() if self.script else self.default
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)


@pytest.fixture
async def fake_server() -> AsyncIterator[Callable[[Answer], Any]]:
    runners: list[web.AppRunner] = []

    async def start(default: Answer) -> tuple[FakeProvider, str]:
        fake = FakeProvider(default)
        app = web.Application()
        app.router.add_post("/{tail:.*}", fake.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return fake, f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def _sent(service: str, body: bytes) -> dict[str, Any]:
    if service == "zulip":
        return {k: v[0] for k, v in parse_qs(body.decode()).items()}
    loaded: dict[str, Any] = json.loads(body)
    return loaded


@pytest.mark.parametrize("service", sorted(PROVIDERS))
async def test_delivered_failed_and_rate_limited_through_the_worker(
    service: str,
    fake_server: Callable[[Answer], Any],
    redis: aioredis.Redis,
    make_settings: Callable[..., Settings],
) -> None:
    provider = PROVIDERS[service]
    fake, base = await fake_server(provider.ok)
    settings = make_settings(
        consumer={"name": f"e2e-{service}", "retry_jitter": 0},
        security={"allow_private_targets": True},
        # well above the provider default, so that only the provider throttles here
        channels=[
            {"name": "out", "url": provider.url, "api_base": base, "rate_limit": {"rate": 50}}
        ],
        subscriptions=[subscription(channels=("out",))],
    )
    now = [2_000_000_000.0]
    async with make_http_client(settings) as http:
        channels = build_channels(settings, make_channel_deps(settings, http))
        worker = Worker(settings, redis=redis, channels=channels, clock=lambda: now[0])
        await worker.start()

        async def deliver(**fields: Any) -> tuple[str, DeliveryRecord]:
            ev = event(**fields)
            async with Publisher(settings, redis=redis) as bus:
                await bus.publish(ev)
            await worker.drain()
            record = await worker.store.get(delivery_id(ev.id, "all", "out"))
            assert record is not None
            return ev.id, record

        event_id, delivered = await deliver(outcome="error", error="disk full")
        assert delivered.status is DeliveryStatus.DELIVERED, delivered.last_error
        assert delivered.channel_type == service
        path, _headers, body = fake.received[-1]
        assert path.split("?")[0] == provider.path
        sent = json.dumps(_sent(service, body))
        assert "capsule.create" in sent  # the notification (or the envelope) went out
        if service in ("pagerduty", "opsgenie"):
            assert event_id in sent  # dedup_key / alias: the event id

        fake.script.append(provider.refused)
        _, failed = await deliver(event="host.down", outcome=None)
        assert failed.status is DeliveryStatus.FAILED
        assert provider.reason in (failed.last_error or "")
        assert SECRET not in json.dumps(failed.to_dict())

        fake.script.append(Answer(429, {"message": "slow down"}, {"Retry-After": "7"}))
        _, limited = await deliver(outcome="success")
        assert limited.status is DeliveryStatus.RETRYING
        assert limited.next_attempt_at is not None
        assert limited.next_attempt_at - now[0] == pytest.approx(7, abs=1)
        # not a failed attempt: nothing counted, nothing but rate_limited in the history
        assert limited.attempts == 0
        assert not [a for a in limited.history if a.outcome != "rate_limited"]
        assert limited.reason == "rate limited"
        assert len(fake.received) == 3
