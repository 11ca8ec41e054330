"""A token in a webhook's URL path reaches none of the places a target is shown.

Records and logs written through the worker, ``channels list`` and
``config check`` (issue 12, item 6), on the real Redis and a local sink.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from click.testing import CliRunner
from structlog.testing import capture_logs

from consumers.channels.registry import build_channels
from consumers.daemon import make_channel_deps, make_http_client
from consumers.worker import Worker
from eventbus.cli import cli
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import event, subscription
from .sink import Sink

pytestmark = pytest.mark.integration

TOKEN = "PathTok3nSecret77"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    found = Sink()
    await found.start()
    yield found
    await found.stop()


def channels(sink: Sink, closed_port: int) -> list[dict[str, Any]]:
    return [
        {"name": "hook", "type": "webhook", "url": f"{sink.url}/{TOKEN}", "secret": SECRET},
        # Nothing listens there: the failure text names the target.
        {"name": "down", "type": "webhook", "url": f"http://127.0.0.1:{closed_port}/in/{TOKEN}"},
    ]


async def stored_text(redis: aioredis.Redis, prefix: str) -> str:
    """Every value under the test's keys, as one text."""
    parts: list[str] = []
    async for key in redis.scan_iter(match=f"*{prefix}*", count=1000):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            parts.append(repr(await redis.get(key)))
        elif kind == "hash":
            parts.append(repr(await redis.hgetall(key)))
        elif kind == "zset":
            parts.append(repr(await redis.zrange(key, 0, -1)))
        elif kind == "list":
            parts.append(repr(await redis.lrange(key, 0, -1)))
        elif kind == "set":
            parts.append(repr(await redis.smembers(key)))
        elif kind == "stream":
            parts.append(repr(await redis.xrange(key)))
    return "\n".join(parts)


async def test_records_and_logs_of_the_worker_hide_the_path_token(
    sink: Sink,
    redis: aioredis.Redis,
    prefix: str,
    make_settings: Callable[..., Settings],
    unused_tcp_port: int,
) -> None:
    settings = make_settings(
        consumer={"name": "paths", "retry_schedule": ["1h"], "retry_jitter": 0},
        security={"allow_private_targets": True},
        channels=channels(sink, unused_tcp_port),
        subscriptions=[subscription(channels=("hook", "down"))],
    )
    http = make_http_client(settings)
    try:
        built = build_channels(settings, make_channel_deps(settings, http))
        for channel in built.values():
            assert TOKEN not in repr(channel) and TOKEN not in channel.describe()
        worker = Worker(settings, redis=redis, channels=built)
        await worker.start()
        async with Publisher(settings, redis=redis) as bus:
            await bus.publish(event())
        with capture_logs() as logs:
            await worker.drain()
        worker.stop()
    finally:
        await http.aclose()
    assert len(sink.received) == 1 and sink.received[0].path == f"/hook/{TOKEN}"
    stored = await stored_text(redis, prefix)
    assert "127.0.0.1" in stored and "/in/***" in stored, "the failure names the target"
    assert TOKEN not in stored
    assert logs and TOKEN not in repr(logs)


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "eventbus.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def invoke(path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(path), *args], catch_exceptions=False)


async def test_channels_list_and_config_check_hide_the_path_token(
    tmp_path: Path, sink: Sink, redis_url: str, prefix: str, unused_tcp_port: int
) -> None:
    data: dict[str, Any] = {
        "broker": {"redis_url": redis_url, "prefix": prefix},
        "http": {"enabled": False},
        "security": {"allow_private_targets": True},
        "channels": channels(sink, unused_tcp_port),
        "subscriptions": [],
    }
    path = write_config(tmp_path, data)
    for args in (("channels", "list"), ("channels", "list", "--json"), ("config", "check")):
        result = await asyncio.to_thread(invoke, path, *args)
        assert result.exit_code == 0, result.output
        assert "/hook/***" in result.output and TOKEN not in result.output, args

    # Refused by the private-target guard: the error names the target, masked.
    data["security"] = {}
    refused = await asyncio.to_thread(invoke, write_config(tmp_path, data), "config", "check")
    assert refused.exit_code == 2
    assert "/in/***" in refused.output and TOKEN not in refused.output
