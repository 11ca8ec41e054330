"""Worker processes on Redis and RabbitMQ: killed, stopped, and the broker restarted.

The worker runs as operators run it (``eventbus run`` in a subprocess); a
local sink receives its webhooks. After each ordeal a fresh worker drains
what is left, and every event must have reached the sink at least once,
duplicates with the same ``webhook-id``, with nothing left unsettled.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from consumers.store.records import DeliveryStatus, delivery_id

from ..fakes import event
from ..processes import start_worker
from .conftest import Mode

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def rescue_and_check(mode: Mode, path: Path, events: list[Any]) -> None:
    """A fresh worker takes over what is left; then every event is delivered and settled."""
    async with mode.worker(path, name="rescuer", claim_idle=0) as worker:
        await worker.reclaim_once()  # Redis: the dead consumer's entries (RabbitMQ requeued them)
        await worker.drain(include_pending=False)
        by_event: dict[str, set[str]] = {}
        for got in mode.sink.received:
            by_event.setdefault(json.loads(got.body)["id"], set()).add(got.headers["webhook-id"])
        for ev in events:
            did = delivery_id(ev.id, "all", "hook")
            assert by_event.get(ev.id) == {did}, "reached the sink; duplicates share webhook-id"
            record = await worker.store.get(did)
            assert record is not None and record.status is DeliveryStatus.DELIVERED, ev.id
    assert await mode.unsettled() == 0


def many(count: int) -> list[Any]:
    return [event(resource={"type": "capsule", "id": f"c{i}"}) for i in range(count)]


async def test_sigkill_mid_batch_then_a_new_worker_delivers_everything(mode: Mode) -> None:
    path = mode.config(max_in_flight=16)
    events = many(300)
    await mode.publish(path, events)
    proc = await start_worker(path, "victim")
    try:
        await mode.sink.wait_for(60)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(mode.sink.received) < len(events), "killed mid-run"
    await rescue_and_check(mode, path, events)


async def test_sigterm_drains_in_flight_work_and_exits_zero(mode: Mode) -> None:
    path = mode.config(drain_timeout="10s", max_in_flight=4)
    mode.sink.gate = asyncio.Event()
    events = many(20)
    await mode.publish(path, events)
    proc = await start_worker(path, "graceful")
    try:
        await mode.sink.wait_for(4)  # four deliveries held in flight by the sink
        proc.send_signal(signal.SIGTERM)
        with pytest.raises(TimeoutError):  # it waits for them (drain_timeout), not exits
            await asyncio.wait_for(asyncio.shield(proc.wait()), 1.0)
        mode.sink.gate.set()
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out.decode()[-2000:]
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    assert any(x["event"] == "worker.stopped" for x in lines)
    assert len([x for x in lines if x["event"] == "delivery.sent"]) >= 4
    (started,) = [x for x in lines if x["event"] == "worker.started"]
    if mode.kind == "rabbitmq":  # the start-up line names what it reads
        assert started["queue"].endswith(".delivery") and "stream" not in started
    else:
        assert started["stream"].endswith(":events") and started["partitions"] == 1
    await rescue_and_check(mode, path, events)


@pytest.mark.parametrize("mode", ["rabbitmq"], indirect=True)
@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_rabbitmq_restart_mid_load_loses_nothing(mode: Mode) -> None:
    path = mode.config(max_in_flight=8)
    events = many(200)
    await mode.publish(path, events)
    proc = await start_worker(path, "through-restart")
    restarted = False
    try:
        await mode.sink.wait_for(30)
        await _rabbitmqctl("stop_app")
        await _rabbitmqctl("start_app")
        restarted = True
        # The worker reconnects by itself and carries on.
        await mode.sink.wait_for(len(events), timeout=60)
    finally:
        if not restarted:  # never leave the shared server stopped
            await _rabbitmqctl("start_app")
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out.decode()[-3000:]
    await rescue_and_check(mode, path, events)


async def _rabbitmqctl(command: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", command, stdout=asyncio.subprocess.DEVNULL
    )
    assert await proc.wait() == 0, f"rabbitmqctl {command} failed"
