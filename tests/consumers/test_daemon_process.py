"""The daemon as operators run it: a subprocess, killed or stopped by signals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml

from consumers.channels.registry import build_channels
from consumers.daemon import make_channel_deps, make_http_client
from consumers.store.records import DeliveryStatus, delivery_id
from consumers.worker import Worker
from eventbus.config import load_settings
from eventbus.keys import Keys
from publishers import Publisher

from .fakes import event
from .processes import start_worker
from .sink import Sink

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EXAMPLE = Path(__file__).parents[2] / "config" / "eventbus.example.yaml"

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
def config(tmp_path: Path, sink: Sink, redis_url: str, prefix: str) -> Callable[..., Path]:
    def write(**consumer: Any) -> Path:
        data = {
            "broker": {"redis_url": redis_url, "prefix": prefix},
            "consumer": {"block": "200ms", "claim_interval": "500ms", **consumer},
            "http": {"enabled": False},
            "security": {"allow_private_targets": True},
            # a line per successful delivery, which these tests read
            "logging": {"format": "json", "deliveries": "all"},
            "channels": [{"name": "hook", "type": "webhook", "url": sink.url, "secret": SECRET}],
            "subscriptions": [{"name": "all", "team": "*", "events": ["*"], "channels": ["hook"]}],
        }
        path = tmp_path / "eventbus.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


async def rescue(path: Path, redis: aioredis.Redis) -> Worker:
    """A fresh in-process worker that reclaims everything left and drains."""
    settings = load_settings(path)
    settings = settings.model_copy(
        update={
            "consumer": settings.consumer.model_copy(update={"name": "rescuer", "claim_idle": 0})
        }
    )
    http = make_http_client(settings)
    try:
        w = Worker(
            settings,
            redis=redis,
            channels=build_channels(settings, make_channel_deps(settings, http)),
        )
        await w.start()
        await w.reclaim_once()
        await w.drain(include_pending=False)
    finally:
        await http.aclose()
    return w


async def check_all_delivered(w: Worker, events: list[Any], sink: Sink) -> None:
    by_event: dict[str, set[str]] = {}
    for got in sink.received:
        by_event.setdefault(json.loads(got.body)["id"], set()).add(got.headers["webhook-id"])
    for ev in events:
        did = delivery_id(ev.id, "all", "hook")
        assert by_event.get(ev.id) == {did}, "reached the sink, duplicates share webhook-id"
        record = await w.store.get(did)
        assert record is not None and record.status is DeliveryStatus.DELIVERED, ev.id
    for keys in w.keys.partitions(w.settings.broker.partitions):  # every stream drained
        assert (await w.redis.xpending(keys.events, w.group))["pending"] == 0


async def publish(path: Path, redis: aioredis.Redis, events: list[Any]) -> None:
    async with Publisher(load_settings(path), redis=redis) as bus:
        await bus.publish_many(events)


async def test_sigkill_mid_batch_then_reclaimed(
    config: Callable[..., Path], sink: Sink, redis: aioredis.Redis
) -> None:
    path = config(max_in_flight=16)
    events = [event(resource={"type": "capsule", "id": f"c{i}"}) for i in range(300)]
    await publish(path, redis, events)
    proc = await start_worker(path, "victim")
    try:
        await sink.wait_for(60)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(sink.received) < len(events), "killed mid-run"

    w = await rescue(path, redis)
    await check_all_delivered(w, events, sink)


async def test_sigterm_drains_in_flight_and_exits_zero(
    config: Callable[..., Path], sink: Sink, redis: aioredis.Redis, prefix: str
) -> None:
    path = config(drain_timeout="10s", max_in_flight=4)
    sink.gate = asyncio.Event()
    events = [event(resource={"type": "capsule", "id": f"c{i}"}) for i in range(20)]
    await publish(path, redis, events)
    proc = await start_worker(path, "graceful")
    try:
        await sink.wait_for(4)  # four deliveries held in flight by the sink
        proc.send_signal(signal.SIGTERM)
        # Held past the signal: a worker that cancelled in-flight work at once
        # (instead of waiting up to drain_timeout) would exit now.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), 1.0)
        sink.gate.set()
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out.decode()[-2000:]
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    assert any(x["event"] == "worker.stopped" for x in lines)
    sent = [x for x in lines if x["event"] == "delivery.sent"]
    assert len(sent) >= 4, "in-flight deliveries finished and were recorded"
    # Nothing it had started is left pending; the rest waits in the stream.
    info = await redis.xpending(Keys(prefix).events, "delivery")
    assert info["pending"] == 0

    w = await rescue(path, redis)
    await check_all_delivered(w, events, sink)


async def test_sigterm_past_drain_timeout_leaves_work_pending(
    config: Callable[..., Path], sink: Sink, redis: aioredis.Redis, prefix: str
) -> None:
    path = config(drain_timeout="500ms", max_in_flight=2)
    sink.gate = asyncio.Event()  # held until the test ends
    events = [event(), event()]
    await publish(path, redis, events)
    proc = await start_worker(path, "stuck")
    try:
        await sink.wait_for(2)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    info = await redis.xpending(Keys(prefix).events, "delivery")
    assert info["pending"] == 2, "unfinished entries stay pending for another worker"
    sink.gate.set()
    w = await rescue(path, redis)
    await check_all_delivered(w, events, sink)


async def test_embedded_broker_first_run(tmp_path: Path) -> None:
    """`eventbus run --embedded` with the example config shows a delivery."""
    proc = await _run_embedded("--embedded-port", "0")
    assert proc.stdout is not None

    async def line_with(text: str) -> str:
        while True:
            line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
            if not line:
                raise AssertionError(f"worker exited before printing {text!r}")
            if text in line:
                return line

    try:
        url = (await asyncio.wait_for(line_with("URL: redis://"), 20)).split("URL:")[1].strip()
        await asyncio.wait_for(line_with("Publish from another terminal"), 5)
        banner_lines = [(await proc.stdout.readline()).decode() for _ in range(3)]
        banner_command = " ".join(line.strip().rstrip("\\") for line in banner_lines)
        await asyncio.wait_for(line_with("daemon.ready"), 20)
        async with Publisher.from_url(url) as bus:
            ev = event(event="host.down", outcome=None)
            await bus.publish(ev)
        # The console channel's line (a success's delivery.sent is a debug line).
        sent = json.loads(await asyncio.wait_for(line_with('"notification"'), 20))
        assert sent["delivery_id"] == delivery_id(ev.id, "everything-to-console", "console")
        assert sent["channel"] == "console"
        # The banner's publish line works as pasted, from a shell with no virtualenv.
        pasted = await asyncio.create_subprocess_shell(
            banner_command, env={"PATH": "/usr/bin:/bin"}, stdout=asyncio.subprocess.PIPE
        )
        printed, _ = await asyncio.wait_for(pasted.communicate(), 30)
        assert pasted.returncode == 0 and printed.startswith(b"event ")
        await asyncio.wait_for(line_with('"notification"'), 20)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_second_signal_exits_at_once(
    config: Callable[..., Path], sink: Sink, redis: aioredis.Redis, prefix: str
) -> None:
    path = config(drain_timeout="60s", max_in_flight=2)
    sink.gate = asyncio.Event()  # deliveries hang: a first SIGTERM would wait 60 s
    await publish(path, redis, [event(), event()])
    proc = await start_worker(path, "impatient")
    try:
        await sink.wait_for(2)
        proc.send_signal(signal.SIGTERM)
        # Signals of one kind do not queue: send the second once the first was seen.
        assert proc.stdout is not None
        while b'"draining"' not in await asyncio.wait_for(proc.stdout.readline(), 10):
            pass
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 130
    info = await redis.xpending(Keys(prefix).events, "delivery")
    assert info["pending"] == 2, "nothing acked without a recorded outcome"


async def test_embedded_fallback_refuses_a_configured_url_that_does_not_answer(
    tmp_path: Path,
) -> None:
    # A typo in a configured URL must not silently switch to a broker that keeps nothing.
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"EVENTBUS_BROKER__REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    proc = await _eventbus(EXAMPLE, "run", "--embedded-fallback", env=env)
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 3
    assert f"no Redis answers at redis://127.0.0.1:{port}/0, the configured" in err.decode()
    assert b"EMBEDDED BROKER" not in err


async def test_taken_http_port_exits_2_before_the_worker_starts(
    config: Callable[..., Path],
) -> None:
    # systemd's RestartPreventExitStatus=2 stops the restart loop only on exit 2.
    path = config()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {
            "EVENTBUS_HTTP__ENABLED": "true",
            "EVENTBUS_HTTP__HOST": "127.0.0.1",
            "EVENTBUS_HTTP__PORT": str(port),
        }
        proc = await _eventbus(path, "run", env=env)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err.decode()
    assert b"Traceback" not in err and b"worker.started" not in out + err


async def _eventbus(
    config: Path, *args: str, env: dict[str, str], stderr: int = asyncio.subprocess.PIPE
) -> asyncio.subprocess.Process:
    """``eventbus --config CONFIG ARGS`` in a process with no virtualenv on its PATH."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eventbus",
        "--config",
        str(config),
        *args,
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )


async def _run_embedded(*args: str) -> asyncio.subprocess.Process:
    env = {"EVENTBUS_HTTP__ENABLED": "false"}
    return await _eventbus(
        EXAMPLE, "run", "--embedded", *args, env=env, stderr=asyncio.subprocess.STDOUT
    )


async def test_embedded_broker_on_a_taken_port_it_was_told_to_use_exits_2() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = await _run_embedded("--embedded-port", str(port))
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in out.decode() and b"Traceback" not in out


async def test_embedded_broker_moves_off_its_default_port_when_taken() -> None:
    taken = socket.socket()
    with contextlib.suppress(OSError):  # already taken by someone else: the same case
        taken.bind(("127.0.0.1", 6390))
        taken.listen()
    proc = await _run_embedded()
    try:
        assert proc.stdout is not None
        seen = b""
        async with asyncio.timeout(30):
            while b"daemon.ready" not in seen:
                line = await proc.stdout.readline()
                assert line, seen.decode()
                seen += line
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    finally:
        taken.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert b"port 6390 is taken" in seen and b"URL: redis://127.0.0.1:6390/" not in seen
    assert proc.returncode == 0
