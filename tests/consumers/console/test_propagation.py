"""API-defined items reach every running worker within a second, whole."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.channels.registry import build_channels
from consumers.console import Console, ConsoleFeed, ConsoleStore
from consumers.daemon import make_channel_deps, make_http_client
from consumers.worker import Worker
from eventbus.keys import Keys
from eventbus.settings import Settings
from publishers import Publisher

from ..fakes import event
from ..sink import Sink

pytestmark = pytest.mark.integration

KEY = base64.b64encode(b"p" * 32).decode()
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    received = Sink()
    await received.start()
    yield received
    await received.stop()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        security={"allow_private_targets": True, "secret_key": KEY},
        consumer={"block": 0.2, "retry_poll": 0.2},
        channels=[{"name": "yaml-console", "type": "console"}],
    )


async def test_two_running_workers_take_an_api_subscription_within_a_second(
    settings: Settings, redis: aioredis.Redis, sink: Sink
) -> None:
    keys = Keys(settings.broker.prefix)
    async with AsyncExitStack() as stack:
        workers: list[tuple[Worker, ConsoleFeed]] = []
        for number in range(2):
            http = make_http_client(settings)
            stack.push_async_callback(http.aclose)
            store = ConsoleStore(redis, keys, settings.security)

            def build(merged: Settings, http: Any = http) -> Any:
                return build_channels(merged, make_channel_deps(merged, http))

            feed = ConsoleFeed(store, settings, build)
            named = settings.model_copy(
                update={"consumer": settings.consumer.model_copy(update={"name": f"w{number}"})}
            )
            worker = Worker(named, redis=redis, channels=build(settings), console=feed)
            await worker.start()
            task = asyncio.create_task(worker.run())
            stack.push_async_callback(_stopped, worker, task)
            workers.append((worker, feed))
        await asyncio.gather(*(feed.until_version(0) for _, feed in workers))

        console = Console(settings, ConsoleStore(redis, keys, settings.security))
        hook = {"name": "t1-hook", "type": "webhook", "url": sink.url, "secret": SECRET}
        await console.create("channel", hook, "team-1", "alice")
        sub = {"name": "t1-all", "events": ["capsule.*"], "channels": ["t1-hook"]}
        changed_at = time.monotonic()
        await console.create("subscription", sub, "team-1", "alice")
        version = await console.store.version()
        async with asyncio.timeout(1.0):
            await asyncio.gather(*(feed.until_version(version) for _, feed in workers))
        assert time.monotonic() - changed_at < 1.0
        for worker, _ in workers:
            assert "t1-all" in worker.dispatcher.subscriptions
            assert "t1-hook" in worker.dispatcher.channels
            assert "yaml-console" in worker.dispatcher.channels, "the YAML's stay"

        async with Publisher(settings, redis=redis) as bus:
            await bus.publish(event(team_id="team-1"))
        await sink.wait_for(1, timeout=10)
        assert sink.received[0].headers.get("webhook-signature", "").startswith("v1,")

        await console.delete("subscription", "t1-all", None, "alice")
        version = await console.store.version()
        async with asyncio.timeout(1.0):
            await asyncio.gather(*(feed.until_version(version) for _, feed in workers))
        assert all("t1-all" not in w.dispatcher.subscriptions for w, _ in workers)


async def _stopped(worker: Worker, task: asyncio.Task[None]) -> None:
    worker.stop()
    await asyncio.wait_for(task, 10)


async def test_a_change_is_applied_whole(settings: Settings, redis: aioredis.Redis) -> None:
    keys = Keys(settings.broker.prefix)
    applied: list[tuple[list[str], list[str]]] = []
    feed = ConsoleFeed(ConsoleStore(redis, keys, settings.security), settings, lambda s: {})
    feed.apply = lambda merged, channels: applied.append(
        ([c.name for c in merged.channels], [s.name for s in merged.subscriptions])
    )
    console = Console(settings, ConsoleStore(redis, keys, settings.security))
    await console.create("channel", {"name": "c1", "type": "console"}, "team-1", "cli")
    await console.create(
        "subscription", {"name": "s1", "events": ["*"], "channels": ["c1"]}, "team-1", "cli"
    )
    await feed.load()
    assert applied[-1] == (["yaml-console", "c1"], ["s1"])
    assert feed.version == await console.store.version() == 2
    feed.rebase(settings.model_copy(update={"channels": []}))
    assert applied[-1] == (["c1"], ["s1"]), "a YAML reload keeps the API's items"
