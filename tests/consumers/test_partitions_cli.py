"""The CLI across broker.partitions=3: deliveries, dlq, resend and replay (real Redis)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from click.testing import CliRunner, Result

from consumers.channels.base import OutcomeClass, SendResult
from consumers.cli import replay as replay_cli
from consumers.store.records import DeliveryStatus, delivery_id
from consumers.worker import Worker
from eventbus.cli import Context, cli
from eventbus.keys import Keys, partition_of
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import FakeChannel, channel_spec, event, subscription

pytestmark = pytest.mark.integration

PARTS = 3
TEAMS = [f"team-{number}" for number in range(12)]


def team_in(part: int) -> str:
    return next(team for team in TEAMS if partition_of(team, PARTS) == part)


class Bench:
    def __init__(self, settings: Settings, worker: Worker, fake: FakeChannel, config: Path) -> None:
        self.settings, self.worker, self.fake, self.config = settings, worker, fake, config
        self.keys = Keys(settings.broker.prefix)

    async def publish(self, *events: Any) -> list[str]:
        async with Publisher(self.settings, redis=self.worker.redis) as bus:
            return await bus.publish_many(list(events))

    async def cli(self, *args: str) -> Result:
        def invoke() -> Result:
            return CliRunner().invoke(cli, ["--config", str(self.config), *args])

        return await asyncio.to_thread(invoke)

    async def replay(self, *args: str) -> Result:
        def invoke() -> Result:
            obj = Context(config_path=str(self.config))
            return CliRunner().invoke(replay_cli.command, list(args), obj=obj)

        return await asyncio.to_thread(invoke)


@pytest.fixture
async def bench(
    redis: aioredis.Redis,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Bench]:
    sections: dict[str, Any] = {
        "consumer": {"name": "cli", "retry_jitter": 0, "retry_schedule": ["1h"]},
        "channels": [channel_spec("fake")],
        "subscriptions": [subscription()],
    }
    settings = make_settings(broker={"partitions": PARTS}, **sections)
    config = tmp_path / "eventbus.yaml"
    broker = {"redis_url": redis_url, "prefix": prefix, "partitions": PARTS}
    config.write_text(yaml.safe_dump({**sections, "broker": broker}))
    fake = FakeChannel("fake")
    worker = Worker(settings, redis=redis, channels={"fake": fake})
    await worker.start()
    yield Bench(settings, worker, fake, config)


async def test_deliveries_list_shows_every_partition(bench: Bench) -> None:
    events = [
        event(team_id=team_in(part), resource={"type": "c", "id": f"r{part}"})
        for part in range(PARTS)
    ]
    await bench.publish(*events)
    await bench.worker.drain()
    result = await bench.cli("deliveries", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    assert sorted(row["team_id"] for row in rows) == sorted(ev.team_id for ev in events)


async def test_dlq_lists_and_redrives_each_partition_onto_its_stream(
    bench: Bench, redis: aioredis.Redis
) -> None:
    for part in (1, 2):
        await redis.xadd(bench.keys.partition(part).events, {"payload": b"not json"})
    await bench.worker.drain()
    listed = await bench.cli("dlq", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines() if line.strip()]
    assert sorted(row["id"].rpartition("@")[2] for row in rows) == ["1", "2"]
    target = next(row["id"] for row in rows if row["id"].endswith("@2"))
    moved = await bench.cli("dlq", "redrive", target)
    assert moved.exit_code == 0, moved.output
    assert await redis.xlen(bench.keys.partition(2).dlq) == 0
    assert await redis.xlen(bench.keys.partition(1).dlq) == 1
    assert await redis.xlen(bench.keys.partition(2).events) == 2, "back on its own stream"


async def test_resend_finds_the_record_in_its_partition(bench: Bench) -> None:
    bench.fake.script.append(SendResult(OutcomeClass.PERMANENT, status=400, error="HTTP 400"))
    ev = event(team_id=team_in(2))
    await bench.publish(ev)
    await bench.worker.drain()
    did = delivery_id(ev.id, "all", "fake")
    result = await bench.cli("deliveries", "resend", did)
    assert result.exit_code == 0, result.output
    await bench.worker.drain()
    record = await bench.worker.store.get(did)
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert [m.delivery_id for m in bench.fake.sent] == [did, did]


async def test_replay_by_time_covers_every_partition_and_by_id_one(bench: Bench) -> None:
    events = [event(team_id=team_in(part)) for part in range(PARTS)]
    ids = await bench.publish(*events)
    await bench.worker.drain()
    result = await bench.replay("--since", "1h")
    assert result.exit_code == 0, result.output
    assert "3 entries read" in result.output
    await bench.worker.drain()
    assert len(bench.fake.sent) == 2 * PARTS
    one = next(stream_id for stream_id in ids if stream_id.endswith("@2"))
    result = await bench.replay("--from-id", one, "--to-id", one)
    assert result.exit_code == 0, result.output
    assert "1 entries read" in result.output
    bad = await bench.replay("--from-id", one.replace("@2", "@7"))
    assert bad.exit_code != 0 and "broker.partitions is 3" in bad.output
