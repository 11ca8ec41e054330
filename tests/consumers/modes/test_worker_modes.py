"""Worker-level contract cases, run on Redis Streams and on RabbitMQ alike."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from prometheus_client import generate_latest

from consumers.amqp_worker import AmqpWorker
from consumers.store.records import DeliveryStatus, delivery_id
from eventbus.brokers.rabbitmq import RabbitMQ
from eventbus.brokers.redis_streams import RedisStreams
from eventbus.cli import cli
from eventbus.keys import Keys

from ..fakes import event
from .conftest import GROUP, Mode

pytestmark = pytest.mark.integration


async def test_published_events_are_delivered_recorded_and_acked(mode: Mode) -> None:
    path = mode.config()
    events = [event(resource={"type": "capsule", "id": f"c{i}"}) for i in range(12)]
    await mode.publish(path, events)
    async with mode.worker(path) as worker:
        assert await worker.drain() == len(events)
        for ev in events:
            record = await worker.store.get(delivery_id(ev.id, "all", "hook"))
            assert record is not None and record.status is DeliveryStatus.DELIVERED
    # Acked for good: with the worker gone, nothing comes back.
    assert await mode.unsettled() == 0
    ids = {json.loads(got.body)["id"] for got in mode.sink.received}
    assert ids == {ev.id for ev in events}
    webhook_ids = {got.headers["webhook-id"] for got in mode.sink.received}
    assert webhook_ids == {delivery_id(ev.id, "all", "hook") for ev in events}


async def test_an_event_published_twice_is_delivered_once_by_its_event_id(mode: Mode) -> None:
    path = mode.config()
    ev = event()
    await mode.publish(path, [ev, ev])
    async with mode.worker(path) as worker:
        await worker.drain()
    assert len(mode.sink.received) == 1  # the second copy was screened as a duplicate
    assert await mode.unsettled() == 0


async def _publish_raw(mode: Mode, payload: str) -> None:
    """A message the publisher client would refuse (another producer's)."""
    if mode.kind == "redis":
        await RedisStreams(mode.redis, Keys(mode.prefix)).publish("team-1", payload)
        return
    async with RabbitMQ(mode.amqp_url, mode.prefix, group=GROUP) as broker:
        await broker.publish("team-1", payload)


def _eventbus(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


async def test_invalid_payload_is_dead_lettered_with_its_reason_then_redriven(
    mode: Mode,
) -> None:
    path = mode.config()
    await _publish_raw(mode, json.dumps({"event": "capsule.create", "team_id": "team-1"}))
    async with mode.worker(path) as worker:
        await worker.drain()
    assert mode.sink.received == []
    assert await mode.unsettled() == 0, "dead-lettered and acked"

    code, out = await asyncio.to_thread(_eventbus, "--config", str(path), "dlq", "list", "--json")
    assert code == 0, out
    [row] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert row["reason"] == "invalid_envelope" and "field required" in row["error"].lower()

    code, out = await asyncio.to_thread(_eventbus, "--config", str(path), "dlq", "redrive", "--all")
    assert code == 0 and "redrove 1" in out, out
    assert await mode.unsettled() == 1, "back in the queue (stream) for the workers"
    code, out = await asyncio.to_thread(_eventbus, "--config", str(path), "dlq", "list", "--json")
    assert code == 0 and not [line for line in out.splitlines() if line.startswith("{")]


RABBITMQ_ONLY = pytest.mark.parametrize("mode", ["rabbitmq"], indirect=True)


@RABBITMQ_ONLY
async def test_rabbitmq_lag_is_the_queue_depth(mode: Mode) -> None:
    path = mode.config()
    await mode.publish(path, [event() for _ in range(3)])
    async with mode.worker(path, max_in_flight=1) as worker:
        assert isinstance(worker, AmqpWorker)
        await worker.measure()
        text = generate_latest(worker.metrics.registry).decode()
        assert f'eventbus_stream_lag{{group="{GROUP}",partition="0"}} 3.0' in text
        assert f'eventbus_queue_depth{{group="{GROUP}"}} 3.0' in text
        # One taken (prefetch 1) and not settled: no longer ready, still in the depth.
        taken = await worker._consume(1, 5.0)
        assert len(taken) == 1
        await worker.measure()
        text = generate_latest(worker.metrics.registry).decode()
        assert f'eventbus_stream_pending{{group="{GROUP}",partition="0"}} 1.0' in text
        assert f'eventbus_queue_depth{{group="{GROUP}"}} 3.0' in text


@RABBITMQ_ONLY  # Redis mode reclaims with XAUTOCLAIM (tests/consumers/test_worker.py)
async def test_rabbitmq_worker_hands_back_what_it_could_not_settle(mode: Mode) -> None:
    path = mode.config()
    await mode.publish(path, [event()])
    async with mode.worker(path, claim_idle=0) as worker:
        assert isinstance(worker, AmqpWorker)
        [entry] = await worker._consume(1, 5.0)  # taken, never sent nor committed
        assert not worker.pipeline.holds(entry.id)
        assert await worker.reclaim_once() == 1
        assert await worker.drain() == 1, "received again and processed"
        assert worker.broker.holding(GROUP, worker.name) == []
    assert len(mode.sink.received) == 1
    assert await mode.unsettled() == 0


async def test_an_envelope_without_id_or_timestamp_gets_them_when_received(mode: Mode) -> None:
    """Another producer's envelope: an id is made for it and its time is when it came."""
    path = mode.config()
    body = {
        "event": "host.down",
        "team_id": "team-1",
        "actor": {"type": "system"},
        "resource": {"type": "host", "id": "h1"},
        "v": 1,
    }
    before = datetime.now(UTC) - timedelta(seconds=1)
    await _publish_raw(mode, json.dumps(body))
    async with mode.worker(path) as worker:
        assert await worker.drain() == 1
    [got] = mode.sink.received
    sent = json.loads(got.body)
    assert sent["id"] and got.headers["webhook-id"] == delivery_id(sent["id"], "all", "hook")
    assert datetime.fromisoformat(sent["timestamp"]) >= before, "not the epoch: when received"
