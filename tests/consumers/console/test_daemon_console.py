"""The daemon wiring: an API-added subscription delivers; a SIGHUP reload keeps it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import yaml

from consumers.console import Console, ConsoleStore
from consumers.daemon import Daemon
from eventbus.config import load_settings
from eventbus.keys import Keys
from publishers import Publisher

from ..fakes import event
from ..sink import Sink

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _thaw_heap() -> Iterator[None]:
    yield
    gc.unfreeze()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    received = Sink()
    await received.start()
    yield received
    await received.stop()


async def test_the_daemon_follows_the_console_across_a_reload(
    tmp_path: Path, sink: Sink, redis: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    config = tmp_path / "eventbus.yaml"
    data = {
        "broker": {"redis_url": redis_url, "prefix": prefix},
        "consumer": {"block": "100ms", "name": "console-daemon"},
        "http": {"enabled": False},
        "security": {"allow_private_targets": True},
        "channels": [{"name": "yaml-console", "type": "console"}],
    }
    config.write_text(yaml.safe_dump(data))
    settings = load_settings(config)
    daemon = Daemon(settings, config_path=config, environ={})
    runner = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.started.wait(), 10)
        assert daemon.console is not None
        console = Console(settings, ConsoleStore(redis, Keys(prefix), settings.security))
        await console.create(
            "channel", {"name": "t1-hook", "type": "webhook", "url": sink.url}, "team-1", "t"
        )
        await console.create(
            "subscription", {"name": "t1", "events": ["*"], "channels": ["t1-hook"]}, "team-1", "t"
        )
        async with asyncio.timeout(1.0):
            await daemon.console.until_version(await console.store.version())
        async with Publisher(settings, redis=redis) as bus:
            await bus.publish(event(team_id="team-1"))
            await sink.wait_for(1)
            assert await daemon.reload()
            assert daemon.worker is not None
            assert "t1" in daemon.worker.dispatcher.subscriptions, "a reload keeps the API's"
            await bus.publish(event(team_id="team-1"))
            await sink.wait_for(2)
    finally:
        daemon.stop()
        await asyncio.wait_for(runner, 15)
