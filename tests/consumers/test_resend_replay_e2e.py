"""Resend and replay on the real Redis: a worker sends them to a local webhook sink.

The CLI commands run in-process (click's CliRunner, in a thread: they run
their own event loop); ``replay`` is invoked as its command object, since
the shared venv learns its entry point only when reinstalled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from click.testing import CliRunner, Result

from consumers.channels.registry import build_channels
from consumers.cli import replay as replay_cli
from consumers.daemon import make_channel_deps, make_http_client
from consumers.replay import replay_delivery_id
from consumers.resend import Resend
from consumers.store.records import RESEND, DeliveryStatus, delivery_id
from consumers.work import new_record
from consumers.worker import Worker
from eventbus.cli import Context, cli
from eventbus.envelope import Event
from eventbus.keys import Keys
from eventbus.settings import Settings
from publishers import Publisher

from .fakes import event, subscription
from .sink import Sink

pytestmark = pytest.mark.integration


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()


class Bench:
    """A worker, its settings and the same configuration as a YAML file for the CLI."""

    def __init__(self, settings: Settings, worker: Worker, config: Path) -> None:
        self.settings, self.worker, self.config = settings, worker, config
        self.keys = Keys(settings.broker.prefix)

    def resender(self) -> Resend:
        return Resend(self.worker.redis, self.keys, 3600.0)

    async def record(self, record_id: str) -> Any:
        found = await self.worker.store.get(record_id)
        assert found is not None, record_id
        return found

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
    sink: Sink,
    redis: aioredis.Redis,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Bench]:
    sections: dict[str, Any] = {
        "consumer": {"name": "e2e", "retry_jitter": 0, "retry_schedule": ["1h"]},
        "security": {"allow_private_targets": True},
        "channels": [
            {"name": "hook", "type": "webhook", "url": sink.url},
            {"name": "other", "type": "webhook", "url": sink.url + "/other"},
        ],
        "subscriptions": [
            subscription(channels=("hook",)),
            subscription("team-2-other", channels=("other",), team="team-2"),
        ],
    }
    settings = make_settings(**sections)
    config = tmp_path / "eventbus.yaml"
    config.write_text(
        yaml.safe_dump({**sections, "broker": {"redis_url": redis_url, "prefix": prefix}})
    )
    http = make_http_client(settings)
    worker = Worker(
        settings, redis=redis, channels=build_channels(settings, make_channel_deps(settings, http))
    )
    await worker.start()
    yield Bench(settings, worker, config)
    await http.aclose()


async def publish(bench: Bench, *events: Event) -> None:
    async with Publisher(bench.settings, redis=bench.worker.redis) as bus:
        await bus.publish_many(list(events))


async def test_resend_sends_the_same_webhook_id_and_adds_to_the_history(
    bench: Bench, sink: Sink
) -> None:
    sink.default = 400
    ev = event()
    await publish(bench, ev)
    await bench.worker.drain()
    did = delivery_id(ev.id, "all", "hook")
    failed = await bench.record(did)
    assert failed.status is DeliveryStatus.FAILED and failed.payload is not None

    sink.default = 204
    done = await bench.resender().resend(did, by="alice")
    assert done.scheduled, done
    queued = await bench.record(did)
    assert queued.status is DeliveryStatus.RETRYING
    assert queued.history[-1].outcome == RESEND and "alice" in (queued.history[-1].response or "")
    await bench.worker.drain()

    assert [r.headers["webhook-id"] for r in sink.received] == [did, did]
    record = await bench.record(did)
    assert record.status is DeliveryStatus.DELIVERED
    assert [(a.outcome, a.status) for a in record.history] == [
        ("permanent", 400),
        (RESEND, None),
        ("delivered", 204),
    ]
    assert record.attempts == 2 and record.payload is None
    assert await bench.worker.retries.next_due() is None


async def test_a_retrying_one_becomes_due_now(bench: Bench, sink: Sink) -> None:
    sink.script.extend([500])
    ev = event()
    await publish(bench, ev)
    await bench.worker.drain()  # 500: the next attempt is due in an hour
    did = delivery_id(ev.id, "all", "hook")
    assert (await bench.record(did)).status is DeliveryStatus.RETRYING
    done = await bench.resender().resend(did)
    assert done.scheduled and done.note == "its scheduled retry is due now"
    await bench.worker.drain()
    record = await bench.record(did)
    assert record.status is DeliveryStatus.DELIVERED and record.attempts == 2
    assert [r.headers["webhook-id"] for r in sink.received] == [did, did]


async def test_a_delivered_one_needs_force_and_its_stream_entry(
    bench: Bench, sink: Sink, redis: aioredis.Redis
) -> None:
    ev = event()
    await publish(bench, ev)
    await bench.worker.drain()
    did = delivery_id(ev.id, "all", "hook")
    refused = await bench.resender().resend(did)
    assert not refused.scheduled and "--force" in refused.note

    forced = await bench.resender().resend(did, force=True)
    assert forced.scheduled, forced
    await bench.worker.drain()
    assert [r.headers["webhook-id"] for r in sink.received] == [did, did]

    await redis.xtrim(bench.keys.events, maxlen=0)  # the entry is gone (past retention)
    gone = await bench.resender().resend(did, force=True)
    assert not gone.scheduled and "no longer available" in gone.note


async def test_routed_unknown_and_other_teams_ones_are_not_resent(
    bench: Bench, redis: aioredis.Redis
) -> None:
    missing = await bench.resender().resend("msg_nope")
    assert not missing.found and not missing.scheduled
    ev = event()
    silenced = new_record(ev, "all", "hook", "webhook", DeliveryStatus.SILENCED, 0, time.time())
    silenced.refers_to, silenced.payload = "sil_1", ev.to_json()
    await redis.set(bench.keys.delivery(silenced.id), silenced.to_json())
    refused = await bench.resender().resend(silenced.id)
    assert not refused.scheduled and refused.note.startswith("silenced (sil_1): a routing decision")
    foreign = await bench.resender().resend(silenced.id, teams=["team-2"])
    assert not foreign.found and foreign.note == missing.note, "as if it did not exist"
    assert await bench.worker.retries.next_due() is None


async def test_bulk_resend_by_status_schedules_each_and_sums_up(bench: Bench, sink: Sink) -> None:
    sink.default = 400
    events = [event(resource={"type": "capsule", "id": f"c{n}"}) for n in range(3)]
    await publish(bench, *events)
    await bench.worker.drain()
    sink.default, sink.received[:] = 204, []

    dry = await bench.cli("deliveries", "resend", "--status", "failed", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "0 would schedule" not in dry.output and "3 would schedule, 0 skipped" in dry.output
    assert await bench.worker.retries.next_due() is None, "a dry run changes nothing"

    done = await bench.cli("deliveries", "resend", "--status", "failed", "--since", "1h")
    assert done.exit_code == 0, done.output
    assert "3 scheduled, 0 skipped" in done.output
    await bench.worker.drain()
    ids = {delivery_id(ev.id, "all", "hook") for ev in events}
    assert {r.headers["webhook-id"] for r in sink.received} == ids and len(sink.received) == 3

    again = await bench.cli("deliveries", "resend", *sorted(ids))
    assert again.exit_code == 1, "explicit ids that were not resent fail the command"
    assert again.output.count("skipped: delivered already") == 3


async def test_replay_by_time_delivers_exactly_the_range_with_new_ids(
    bench: Bench, sink: Sink, redis: aioredis.Redis
) -> None:
    now_ms = int(time.time() * 1000)
    ages = {"3h": 3 * 3600_000, "2h": 2 * 3600_000, "1h": 3600_000, "1m": 60_000}
    events = {age: event(resource={"type": "capsule", "id": age}) for age in ages}
    for age, ms in ages.items():
        await redis.xadd(
            bench.keys.events, {"payload": events[age].to_json()}, id=f"{now_ms - ms}-0"
        )
    await bench.worker.drain()  # the originals
    sink.received[:] = []

    done = await bench.replay("--since", "150m", "--until", "30m")
    assert done.exit_code == 0, done.output
    assert "2 deliveries queued" in done.output
    await bench.worker.drain()

    wanted = {delivery_id(events[age].id, "all", "hook"): age for age in ("2h", "1h")}
    sent = {r.headers["webhook-id"] for r in sink.received}
    assert len(sink.received) == 2 and not sent & set(wanted), "new delivery ids"
    run_id = done.output.split("replay ", 1)[1].split(":", 1)[0]
    assert sent == {replay_delivery_id(original, run_id) for original in wanted}
    for replayed in sent:
        record = await bench.record(replayed)
        assert record.status is DeliveryStatus.DELIVERED and record.replay_of in wanted


async def test_replay_by_id_one_channel_and_team(
    bench: Bench, sink: Sink, redis: aioredis.Redis
) -> None:
    ids = []
    mine = [event(team_id="team-2", resource={"type": "capsule", "id": f"c{n}"}) for n in range(3)]
    for ev in [*mine, event(team_id="team-1")]:
        ids.append(await redis.xadd(bench.keys.events, {"payload": ev.to_json()}))
    await bench.worker.drain()
    sink.received[:] = []
    first, last = ids[1].decode(), ids[3].decode()

    done = await bench.replay(
        "--from-id", first, "--to-id", last, "--channel", "other", "--team", "team-2"
    )
    assert done.exit_code == 0, done.output
    await bench.worker.drain()
    assert len(sink.received) == 2 and {r.path for r in sink.received} == {"/hook/other"}
    bodies = b"".join(r.body for r in sink.received)
    assert mine[1].id.encode() in bodies and mine[2].id.encode() in bodies


async def test_replay_dry_run_sends_nothing(
    bench: Bench, sink: Sink, redis: aioredis.Redis
) -> None:
    ev = event()
    await publish(bench, ev)
    await bench.worker.drain()
    sink.received[:] = []

    dry = await bench.replay("--since", "1h", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"all -> hook  (replay of {delivery_id(ev.id, 'all', 'hook')})" in dry.output
    assert "1 deliveries would queue" in dry.output
    assert await bench.worker.retries.next_due() is None
    await bench.worker.drain()
    assert sink.received == []


async def test_replay_refuses_unclear_ranges_and_names(bench: Bench) -> None:
    assert (await bench.replay()).exit_code == 2
    assert (await bench.replay("--since", "2h", "--from-id", "1-0")).exit_code == 2
    bad_id = await bench.replay("--from-id", "yesterday")
    assert bad_id.exit_code == 2 and "not a stream entry id" in bad_id.output
    unknown = await bench.replay("--since", "1h", "--subscription", "nope")
    assert unknown.exit_code == 2 and "configured: all, team-2-other" in unknown.output
