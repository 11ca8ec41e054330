"""Telegram through the whole pipeline: worker, records and retries, fake Bot API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from consumers.channels.registry import build_channels
from consumers.daemon import make_channel_deps
from consumers.store.records import DeliveryStatus, delivery_id
from consumers.worker import Worker
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import event
from .telegram_fake import TOKEN, FakeBotApi

pytestmark = pytest.mark.integration


async def test_telegram_split_rate_limit_and_failure_through_the_worker(
    bot_api: tuple[FakeBotApi, str],
    redis: aioredis.Redis,
    make_settings: Callable[..., Settings],
) -> None:
    fake, base = bot_api
    settings = make_settings(
        consumer={"name": "tg", "retry_jitter": 0},
        channels=[
            {
                "name": "chat",
                "type": "telegram",
                "bot_token": TOKEN,
                "chat_id": "-100777",
                "api_base": base,
            }
        ],
        subscriptions=[{"name": "all", "team": "*", "events": ["*"], "channels": ["chat"]}],
    )
    now = [2_000_000_000.0]
    async with httpx.AsyncClient() as http:
        channels = build_channels(settings, make_channel_deps(settings, http))
        w = Worker(settings, redis=redis, channels=channels, clock=lambda: now[0])
        await w.start()

        async def deliver(**kw: Any) -> Any:
            ev = event(**kw)
            async with Publisher(settings, redis=redis) as bus:
                await bus.publish(ev)
            await w.drain()
            record = await w.store.get(delivery_id(ev.id, "all", "chat"))
            assert record is not None
            return record

        # A long notification is split into several messages, all delivered.
        long = await deliver(metadata={f"line{i:02d}": "x" * 900 for i in range(12)})
        assert long.status is DeliveryStatus.DELIVERED
        assert len(fake.received) >= 3
        assert all(len(p["text"]) <= 4096 for p in fake.received)

        # ok:false with a 400 is a permanent failure, recorded with the reason.
        fake.script.append(
            (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
        )
        failed = await deliver(event="host.down", outcome=None)
        assert failed.status is DeliveryStatus.FAILED
        assert "chat not found" in (failed.last_error or "")
        assert TOKEN not in str(failed.to_dict())

        # 429 with retry_after: rescheduled, not counted as a failed attempt.
        fake.script.append(
            (
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 7",
                    "parameters": {"retry_after": 7},
                },
            )
        )
        limited = await deliver(outcome="error", error="disk full")
        assert limited.status is DeliveryStatus.RETRYING
        assert limited.next_attempt_at is not None
        assert limited.next_attempt_at - now[0] == pytest.approx(7, abs=1)
        assert not [a for a in limited.history if a.outcome != "rate_limited"]
