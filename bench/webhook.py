"""Webhook deliveries/s to a local keep-alive sink, against bare HTTP clients.

The sink runs in its own process. Every variant keeps 64 requests in flight:
the worker through ``consumer.max_in_flight`` (``run()`` mode, signing with a
``whsec_`` secret as a production channel would), the baselines through 64
tasks POSTing the same ~410-byte body in a loop for a fixed time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import redis.asyncio as aioredis
from httpx_aiohttp import AiohttpTransport

from consumers.channels import webhook
from consumers.channels.base import ChannelDeps, Message
from consumers.outbound import make_http_client
from consumers.worker import Worker
from eventbus.envelope import decode
from eventbus.keys import Keys
from eventbus.settings import ChannelSpec, SecuritySettings, Settings

from .common import (
    REDIS_URL,
    Result,
    Row,
    delete_prefix,
    envelopes,
    fill_stream,
    interleaved,
    new_prefix,
    progress,
    worker_redis,
)
from .consume import run_until_caught_up
from .sink import Sink

__all__ = ["post_loop", "run"]

CONCURRENCY = 64
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HEADERS = {"content-type": "application/json"}


async def post_loop(send: Callable[[], Awaitable[object]], seconds: float) -> float:
    """``CONCURRENCY`` tasks calling ``send`` until ``seconds`` pass: requests/s."""
    count = 0
    deadline = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await send()
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
    return count / (time.perf_counter() - start)


async def bare_httpx(url: str, body: bytes, seconds: float) -> float:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits) as client:

        async def send() -> None:
            (await client.post(url, content=body, headers=HEADERS)).raise_for_status()

        return await post_loop(send, seconds)


async def bare_httpx_aiohttp(url: str, body: bytes, seconds: float) -> float:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:

        async def send() -> None:
            (await client.post(url, content=body, headers=HEADERS)).raise_for_status()

        return await post_loop(send, seconds)


async def bare_aiohttp(url: str, body: bytes, seconds: float) -> float:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> None:
            async with session.post(url, data=body, headers=HEADERS) as response:
                await response.read()
                response.raise_for_status()

        return await post_loop(send, seconds)


def _deps() -> tuple[ChannelDeps, httpx.AsyncClient]:
    security = SecuritySettings(allow_private_targets=True)
    client = make_http_client(security, timeout=15.0)
    return ChannelDeps(http=client, security=security), client


def _spec(url: str) -> ChannelSpec:
    return ChannelSpec.model_validate(
        {"name": "hook", "type": "webhook", "url": url, "secret": SECRET}
    )


async def channel_only(url: str, body: bytes, seconds: float) -> float:
    """``WebhookChannel.send()`` on the production client, no worker around it."""
    deps, client = _deps()
    async with client:
        channel = webhook.create(_spec(url), deps)
        message = Message(title="t", body="b", event=decode(body), delivery_id="msg_bench")

        async def send() -> None:
            result = await channel.send(message)
            if not result.ok:
                raise RuntimeError(f"webhook send failed: {result.error}")

        return await post_loop(send, seconds)


async def worker_webhook(url: str, prefix: str, group: str, total: int) -> float:
    """The worker delivering ``total`` entries through the webhook channel: deliveries/s."""
    settings = Settings(
        broker={"redis_url": REDIS_URL, "prefix": prefix},
        consumer={"group": group, "name": "bench", "max_in_flight": CONCURRENCY},
        security={"allow_private_targets": True},
        channels=[_spec(url)],
        subscriptions=[{"name": "all", "team": "*", "events": ["*"], "channels": ["hook"]}],
    )
    deps, client = _deps()
    redis = worker_redis(CONCURRENCY)
    try:
        channel = webhook.create(settings.channels[0], deps)
        worker = Worker(settings, redis=redis, channels={"hook": channel})
        await worker.start()
        start = time.perf_counter()
        await run_until_caught_up(worker, Keys(prefix).events, group, total)
        elapsed = time.perf_counter() - start
        delivered = worker.metrics.deliveries.labels("webhook", "hook", "delivered")._value.get()
        if delivered != total:
            raise RuntimeError(f"worker delivered {delivered:g} of {total} entries")
        await redis.xgroup_destroy(Keys(prefix).events, group)
    finally:
        await client.aclose()
        await redis.aclose()
    return total / elapsed


async def run(total: int, seconds: float, rounds: int) -> Result:
    prefix = new_prefix("webhook")
    keys = Keys(prefix)
    redis = aioredis.Redis.from_url(REDIS_URL)
    result = Result(
        "webhook",
        "Webhook deliveries to a local keep-alive sink (204), 64 in flight",
        {
            "worker_entries": total,
            "baseline_seconds": seconds,
            "rounds": rounds,
            "in_flight": CONCURRENCY,
        },
    )
    try:
        payloads = envelopes(total)
        body = payloads[0].encode()
        await fill_stream(redis, keys.events, payloads)
        del payloads
        serial = iter(range(10_000))
        with Sink() as sink:
            progress(f"webhook: sink at {sink.url}")

            async def worker() -> float:
                rate = await worker_webhook(sink.url, prefix, f"g{next(serial)}", total)
                await delete_prefix(redis, prefix, keep=[keys.events])
                return rate

            values = await interleaved(
                {
                    "worker": worker,
                    "channel": lambda: channel_only(sink.url, body, seconds),
                    "httpx": lambda: bare_httpx(sink.url, body, seconds),
                    "httpx+aiohttp": lambda: bare_httpx_aiohttp(sink.url, body, seconds),
                    "aiohttp": lambda: bare_aiohttp(sink.url, body, seconds),
                },
                rounds,
                "req/s",
            )
        worker_row = "worker + webhook channel (run(), signed)"
        result.rows = [
            Row(worker_row, "deliveries/s", values["worker"]),
            Row(
                "WebhookChannel.send() alone, production client", "req/s", values["channel"], "info"
            ),
            Row("bare httpx AsyncClient (native transport)", "req/s", values["httpx"], "baseline"),
            Row("bare httpx over AiohttpTransport", "req/s", values["httpx+aiohttp"], "info"),
            Row("bare aiohttp ClientSession", "req/s", values["aiohttp"], "baseline"),
        ]
        result.ratio("worker/httpx", worker_row, "bare httpx AsyncClient (native transport)")
        result.ratio("worker/aiohttp", worker_row, "bare aiohttp ClientSession")
        result.ratio(
            "channel/aiohttp",
            "WebhookChannel.send() alone, production client",
            "bare aiohttp ClientSession",
        )
        result.set_target(
            "worker/aiohttp", ">=", 0.5, "signed, recorded deliveries >= 0.5 of bare aiohttp"
        )
        result.notes.append(
            "Sink: aiohttp.web in its own process answering 204. The worker reads, decodes, "
            "signs (Standard Webhooks, one whsec_ secret), hands an httpx.Request straight to "
            "the transport of make_http_client() (the guarded AiohttpTransport, private "
            "targets allowed), records and acks; the bare loops only POST. The ratio to bare "
            "aiohttp is the real bar."
        )
    finally:
        await delete_prefix(redis, prefix)
        await redis.aclose()
    return result
