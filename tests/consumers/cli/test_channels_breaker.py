"""``channels list`` shows the circuit; ``channels disable`` / ``enable`` (enable resets it)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.breaker import Breaker
from consumers.channels.base import OutcomeClass, SendResult
from consumers.store import BreakerStore
from eventbus.keys import Keys
from eventbus.settings import Settings

from .test_ops import ainvoke, config

pytestmark = pytest.mark.integration


async def rows(path: Path) -> dict[str, dict[str, Any]]:
    listed = await ainvoke(path, "channels", "list", "--json")
    assert listed.exit_code == 0, listed.output
    return {row["name"]: row for row in map(json.loads, listed.output.splitlines())}


async def test_list_shows_circuit_and_enable_resets_it(
    tmp_path: Path, redis: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    path = config(tmp_path, redis_url, prefix, breaker={"consecutive": 3})
    settings = Settings(
        broker={"redis_url": redis_url, "prefix": prefix},
        breaker={"consecutive": 3},
        channels=[{"name": "console", "type": "console"}],
    )
    breaker = Breaker(settings, BreakerStore(redis, Keys(prefix)), clock=time.time)
    for _ in range(3):
        breaker.observe("console", SendResult(OutcomeClass.RETRYABLE, error="HTTP 503"))
    await breaker.flush()

    row = (await rows(path))["console"]
    assert (row["circuit"], row["failure_ratio"], row["last_error"]) == ("open", "100%", "HTTP 503")
    table = (await ainvoke(path, "channels", "list")).output
    assert "CIRCUIT" in table and "open" in table

    disabled = await ainvoke(path, "channels", "disable", "console", "--reason", "maintenance")
    assert disabled.exit_code == 0 and "console: disabled" in disabled.output
    assert (await rows(path))["console"]["state"] == "disabled: maintenance"

    enabled = await ainvoke(path, "channels", "enable", "console")
    assert "console: enabled" in enabled.output
    row = (await rows(path))["console"]
    assert (row["state"], row["circuit"], row["failure_ratio"]) == ("enabled", "closed", "")
    assert not await redis.exists(Keys(prefix).breaker("console"))


async def test_disable_unknown_channel_is_a_usage_error(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    result = await ainvoke(config(tmp_path, redis_url, prefix), "channels", "disable", "nope")
    assert result.exit_code == 2 and "no channel named 'nope'" in result.output
