"""``eventbus dlq`` with broker.kind: rabbitmq reads and redrives ``<prefix>.dlq``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from eventbus.brokers.rabbitmq import RabbitMQ
from eventbus.cli import cli
from tests.eventbus.brokers.conftest import GROUP, delete_topology, envelope

pytestmark = pytest.mark.integration


async def dlq(path: Path, *args: str) -> Any:
    """The CLI runs its own event loop: give it a thread of its own."""
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, cli, ["--config", str(path), "dlq", *args], catch_exceptions=False
    )


async def test_a_message_past_the_delivery_limit_is_listed_with_the_reason_and_redriven(
    tmp_path: Path, amqp_url: str, prefix: str
) -> None:
    path = tmp_path / "eventbus.yaml"
    broker_settings = {"kind": "rabbitmq", "amqp_url": amqp_url, "prefix": prefix}
    path.write_text(yaml.safe_dump({"broker": broker_settings, "consumer": {"max_receives": 1}}))
    payload = envelope(1)
    try:
        async with RabbitMQ(amqp_url, prefix, max_receives=1) as broker:
            await broker.publish("team-1", payload)
            await broker.consume(GROUP, "dies", 1, 5)
            await broker.release(GROUP, "dies")  # received once, never acked
            async with asyncio.timeout(10):  # the next receive passes the limit
                while not await broker.consume(GROUP, "last", 1, 0.5):
                    if await broker.dead_letter_count():
                        break
            await broker.release(GROUP, "last")
            listed = await dlq(path, "list")
            assert listed.exit_code == 0, listed.output
            assert "delivery_limit" in listed.output
            as_json = await dlq(path, "list", "--json")
            [row] = [json.loads(line) for line in as_json.output.splitlines()]
            assert row["id"] == json.loads(payload)["id"] and "x-delivery-limit" in row["error"]
            moved = await dlq(path, "redrive", "--all")
            assert moved.exit_code == 0 and "redrove 1" in moved.output
            assert await broker.dead_letter_count() == 0
            [back] = await broker.consume(GROUP, "after", 1, 5)
            assert json.loads(back.payload or b"") == json.loads(payload)
    finally:
        await delete_topology(amqp_url, prefix, [GROUP])
