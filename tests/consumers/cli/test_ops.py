"""Operator commands: run exit codes, deliveries, dlq, channels."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from click.testing import CliRunner

from eventbus.cli import cli
from eventbus.keys import Keys
from publishers import Publisher
from tests.consumers.fakes import event
from tests.consumers.sink import Sink

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()


def config(tmp_path: Path, redis_url: str, prefix: str, **extra: Any) -> Path:
    data: dict[str, Any] = {
        "broker": {"redis_url": redis_url, "prefix": prefix},
        "http": {"enabled": False},
        "security": {"allow_private_targets": True},
        "channels": [{"name": "console", "type": "console"}],
        "subscriptions": [{"name": "all", "team": "*", "events": ["*"], "channels": ["console"]}],
    }
    data.update(extra)
    path = tmp_path / "eventbus.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def invoke(path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(path), *args], catch_exceptions=False)


async def ainvoke(path: Path, *args: str) -> Any:
    """The CLI runs its own event loop: give it a thread of its own."""
    return await asyncio.to_thread(invoke, path, *args)


def test_run_exits_2_on_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "subscriptions:\n  - name: s\n    team: '*'\n    events: [x.y]\n    channels: [missing]\n"
    )
    result = invoke(path, "run")
    assert result.exit_code == 2
    assert "missing" in result.output and "bad.yaml:" in result.output


def test_run_exits_3_when_broker_unreachable(tmp_path: Path) -> None:
    path = config(tmp_path, "redis://:hunter2@127.0.0.1:1/0", "p")
    result = invoke(path, "run")
    assert result.exit_code == 3
    assert "unreachable" in result.output
    assert "hunter2" not in result.output


async def test_deliveries_table_and_json(
    tmp_path: Path, redis: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    from consumers.channels.registry import build_channels
    from consumers.daemon import make_channel_deps, make_http_client
    from consumers.worker import Worker
    from eventbus.config import load_settings

    path = config(tmp_path, redis_url, prefix)
    settings = load_settings(path)
    ev = event()
    async with Publisher(settings, redis=redis) as bus:
        await bus.publish(ev)
    async with make_http_client(settings) as http:
        w = Worker(
            settings,
            redis=redis,
            channels=build_channels(settings, make_channel_deps(settings, http)),
        )
        await w.start()
        await w.drain()

    table = await ainvoke(path, "deliveries", "--since", "1h")
    assert table.exit_code == 0
    assert "delivered" in table.output and ev.id in table.output
    assert "None" not in table.output  # an absent value is a blank cell
    assert "REASON" in table.output.splitlines()[0]
    lines = (await ainvoke(path, "deliveries", "--event", ev.id, "--json")).output.splitlines()
    (row,) = [json.loads(x) for x in lines]
    assert row["status"] == "delivered" and row["history"][0]["outcome"] == "delivered"
    # times as the envelope writes them (RFC 3339 UTC, ms), not epoch floats
    rfc3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(rfc3339, row["updated_at"]) and re.fullmatch(rfc3339, row["created_at"])
    assert re.fullmatch(rfc3339, row["history"][0]["at"])
    assert (await ainvoke(path, "deliveries", "--status", "failed")).output.strip() == "(none)"
    bad = await ainvoke(path, "deliveries", "--since", "yesterday")
    assert bad.exit_code == 2 and "not a duration" in bad.output


async def test_dlq_list_and_redrive(
    tmp_path: Path, redis: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    from consumers.worker import Worker
    from eventbus.config import load_settings
    from tests.consumers.fakes import FakeChannel

    path = config(tmp_path, redis_url, prefix)
    settings = load_settings(path)
    keys = Keys(prefix)
    fake = FakeChannel("console")
    w = Worker(settings, redis=redis, channels={"console": fake})
    await w.start()
    await redis.xadd(keys.events, {"payload": b"{not json"})
    await w.drain()

    listed = await ainvoke(path, "dlq", "list")
    assert listed.exit_code == 0 and "invalid_envelope" in listed.output
    (letter,) = [
        json.loads(x) for x in (await ainvoke(path, "dlq", "list", "--json")).output.splitlines()
    ]

    # The operator "fixes" the entry's cause: here we just check redrive moves it back.
    bare = await ainvoke(path, "dlq", "redrive")
    assert bare.exit_code == 2 and "eventbus dlq list" in bare.output and "--all" in bare.output
    moved = await ainvoke(path, "dlq", "redrive", letter["id"])
    assert moved.exit_code == 0 and "redrove 1" in moved.output
    assert await redis.xlen(keys.dlq) == 0
    last = await redis.xrevrange(keys.events, count=1)
    assert last[0][1][b"payload"] == b"{not json"
    assert (await ainvoke(path, "dlq", "redrive", "1-1")).exit_code == 1


async def test_channels_list_and_test(
    tmp_path: Path, sink: Sink, redis: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    channels = [
        {"name": "hook", "type": "webhook", "url": sink.url, "secret": SECRET},
        {"name": "gone", "type": "webhook", "url": sink.url.replace("/hook", "/gone")},
    ]
    path = config(tmp_path, redis_url, prefix, channels=channels, subscriptions=[])

    listed = await ainvoke(path, "channels", "list")
    assert listed.exit_code == 0
    assert "hook" in listed.output and "webhook" in listed.output
    assert SECRET not in listed.output

    ok = await ainvoke(path, "channels", "test", "hook")
    assert ok.exit_code == 0, ok.output
    assert "delivered" in ok.output
    (got,) = sink.received
    assert b"channel_test" in got.body

    sink.default = 500
    failed = await ainvoke(path, "channels", "test", "gone")
    assert failed.exit_code == 1 and "HTTP 500" in failed.output
    rows = [
        json.loads(x)
        for x in (await ainvoke(path, "channels", "list", "--json")).output.splitlines()
    ]
    by_name = {r["name"]: r for r in rows}
    assert by_name["hook"]["last_outcome"] == "delivered"
    assert by_name["gone"]["last_outcome"] == "failed"
    assert (await ainvoke(path, "channels", "test", "nope")).exit_code == 2

    from consumers.store.records import ChannelState, DeliveryStore

    store = DeliveryStore(redis, Keys(prefix))
    await redis.hset(
        Keys(prefix).channel_state, "gone", json.dumps(ChannelState(True, "HTTP 410").to_dict())
    )
    assert "disabled" in (await ainvoke(path, "channels", "list")).output
    enabled = await ainvoke(path, "channels", "enable", "gone")
    assert enabled.exit_code == 0 and "enabled" in enabled.output
    assert "gone" not in await store.channel_states()


def test_config_check_reports_broken_templates_with_line(tmp_path: Path) -> None:
    path = tmp_path / "eventbus.yaml"
    path.write_text(
        "channels:\n  - name: console\n    type: console\n"
        "subscriptions:\n"
        "  - name: fine\n    team: '*'\n    events: ['*']\n    channels: [console]\n"
        "  - name: broken\n    team: '*'\n    events: ['*']\n    channels: [console]\n"
        "    title_template: '{{ event.type '\n"
    )
    result = invoke(path, "config", "check")
    assert result.exit_code == 2
    assert f"{path}:9" in result.output and "broken" in result.output
