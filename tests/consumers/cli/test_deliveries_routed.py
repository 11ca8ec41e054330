"""Routed record states (suppressed, grouped, silenced, merged) in ``eventbus deliveries``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from click.testing import CliRunner

from consumers.cli.deliveries import STATES
from consumers.store import DeliveryStatus, Settlement, delivery_id
from consumers.store.commit import Committer
from consumers.work import new_record
from eventbus.cli import cli
from eventbus.keys import Keys
from tests.consumers.fakes import event

pytestmark = pytest.mark.integration

ROUTED = ("suppressed", "grouped", "silenced", "merged")


def config(tmp_path: Path, redis_url: str, prefix: str) -> Path:
    data: dict[str, Any] = {
        "broker": {"redis_url": redis_url, "prefix": prefix},
        "http": {"enabled": False},
        "channels": [{"name": "console", "type": "console"}],
        "subscriptions": [{"name": "all", "team": "*", "events": ["*"], "channels": ["console"]}],
    }
    path = tmp_path / "eventbus.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def invoke(path: Path, *args: str) -> Any:
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, cli, ["--config", str(path), *args], catch_exceptions=False
    )


async def write_routed(redis: aioredis.Redis, prefix: str) -> dict[str, str]:
    """One record per routed state (as routing writes them), each referring to a delivery."""
    ev = event()
    delivering = new_record(ev, "first", "console", "console", DeliveryStatus.DELIVERED, 1)
    records = [delivering]
    for state in ROUTED:
        record = new_record(ev, f"sub-{state}", "console", "console", DeliveryStatus(state))
        record.reason, record.refers_to = f"{state} on purpose", delivering.id
        records.append(record)
    committer = Committer(redis, Keys(prefix), group="delivery", ttl=3600)
    await committer.commit([Settlement(records=records)], now=delivering.created_at)
    return {record.status.value: record.id for record in records}


def test_every_state_can_be_asked_for() -> None:
    assert set(ROUTED) <= set(STATES)
    assert set(STATES) == {status.value for status in DeliveryStatus}


async def test_deliveries_lists_and_filters_routed_states(
    tmp_path: Path, redis: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    ids = await write_routed(redis, prefix)
    path = config(tmp_path, redis_url, prefix)
    for state in ROUTED:
        table = await invoke(path, "deliveries", "--status", state)
        assert table.exit_code == 0, table.output
        header, *rows = table.output.splitlines()
        assert "REFERS TO" in header
        (row,) = rows
        assert state in row and ids["delivered"] in row and f"{state} on purpose" in row
        lines = (await invoke(path, "deliveries", "--status", state, "--json")).output
        (found,) = [json.loads(line) for line in lines.splitlines()]
        assert found["status"] == state and found["refers_to"] == ids["delivered"]
    delivered = await invoke(path, "deliveries", "--status", "delivered")
    assert "REFERS TO" not in delivered.output, "no routed record: no such column"


def test_delivery_ids_of_routed_records_are_stable() -> None:
    ev = event()
    record = new_record(ev, "s", "console", "console", DeliveryStatus.MERGED)
    assert record.id == delivery_id(ev.id, "s", "console")
