"""The daemon in-process: systemd notify, HTTP side, SIGHUP-style reload."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import yaml
from structlog.testing import capture_logs

from consumers.daemon import Daemon
from eventbus.config import load_settings
from publishers import Publisher

from .fakes import event
from .sink import Sink

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _thaw_heap() -> Iterator[None]:
    """The daemon freezes the heap once started (gc.freeze); give it back to the GC."""
    yield
    gc.unfreeze()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()


def write(
    path: Path, redis_url: str, prefix: str, hook: str, token: str = "old-token-0123", **extra: Any
) -> None:
    data = {
        "broker": {"redis_url": redis_url, "prefix": prefix},
        "consumer": {"block": "100ms", "name": "daemon-test"},
        "http": {"port": 0, "tokens": [{"name": "ops", "token": token}]},
        "security": {"allow_private_targets": True},
        "channels": [{"name": "hook", "type": "webhook", "url": hook}],
        "subscriptions": [{"name": "all", "team": "*", "events": ["*"], "channels": ["hook"]}],
        **extra,
    }
    path.write_text(yaml.safe_dump(data))


async def test_notify_reload_and_stop(
    tmp_path: Path, sink: Sink, redis: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    config = tmp_path / "eventbus.yaml"
    write(config, redis_url, prefix, sink.url)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.setblocking(False)
    loop = asyncio.get_running_loop()

    async def datagram() -> str:
        data = await asyncio.wait_for(loop.sock_recv(notify, 4096), 10)
        return data.decode()

    settings = load_settings(config)
    daemon = Daemon(
        settings, config_path=config, environ={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    )
    runner = asyncio.create_task(daemon.run())
    try:
        assert "READY=1" in await datagram()
        async with Publisher(settings, redis=redis) as bus:
            await bus.publish(event())
            await sink.wait_for(1)
            assert sink.received[0].path == "/hook"

            # A valid new configuration applies to new work, tokens included.
            write(
                config,
                redis_url,
                prefix,
                sink.url.replace("/hook", "/hook2"),
                token="new-token-4567",
                security={"allow_private_targets": True, "allowed_hosts": ["10.0.0.9"]},
            )
            with capture_logs() as logs:
                assert await daemon.reload()
            restart = [x for x in logs if x["event"] == "config.restart_needed"]
            assert restart and restart[0]["settings"] == ["security"], logs
            assert gc.get_freeze_count() > 0, "the long-lived heap is frozen again"
            assert "READY=1" in await datagram()
            assert daemon._server is not None
            url = f"http://127.0.0.1:{daemon._server.port}/v1/deliveries"
            async with httpx.AsyncClient() as http:
                old = await http.get(url, headers={"Authorization": "Bearer old-token-0123"})
                new = await http.get(url, headers={"Authorization": "Bearer new-token-4567"})
            assert (old.status_code, new.status_code) == (401, 200)
            await bus.publish(event())
            await sink.wait_for(2)
            assert sink.received[1].path == "/hook2"

            # An invalid one is rejected, logged, and the old one kept.
            config.write_text("channels: [{name: broken, url: 'nope://x'}]\nbogus: 1\n")
            with capture_logs() as logs:
                assert not await daemon.reload()
            failed = [x for x in logs if x["event"] == "config.reload_failed"]
            assert failed and any("bogus" in p for p in failed[0]["problems"])
            await bus.publish(event())
            await sink.wait_for(3)
            assert sink.received[2].path == "/hook2"
    finally:
        daemon.stop()
        await asyncio.wait_for(runner, 15)
    try:
        messages = [await datagram() for _ in range(2)]
    finally:
        notify.close()
    assert "reload failed" in messages[0], "the rejected reload said so"
    assert "STOPPING=1" in messages[1]


async def test_port_in_use_stops_start_up_before_the_worker_is_announced(
    tmp_path: Path, sink: Sink, redis_url: str, prefix: str
) -> None:
    from eventbus.errors import ConfigError

    taken = socket.create_server(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        config = tmp_path / "eventbus.yaml"
        write(config, redis_url, prefix, sink.url, http={"host": "127.0.0.1", "port": port})
        daemon = Daemon(load_settings(config), config_path=config)
        with capture_logs() as logs, pytest.raises(ConfigError) as info:
            await asyncio.wait_for(daemon.run(), 30)
    finally:
        taken.close()
    assert f"cannot listen on 127.0.0.1:{port}" in str(info.value)
    assert "http.port" in str(info.value)
    assert "worker.started" not in [line["event"] for line in logs]
