"""``eventbus serve`` and ``eventbus tail`` as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from eventbus.settings import Settings
from publishers.client import Publisher
from tests.consumers.server.conftest import TOKEN_A, event

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "from eventbus.cli import main; main()"]


@pytest.fixture
def config(tmp_path: Path, redis_url: str, prefix: str) -> Path:
    path = tmp_path / "eventbus.yaml"
    path.write_text(
        f"""
broker:
  redis_url: {redis_url}
  prefix: {prefix}
http:
  port: 0
  tokens:
    - name: team-a
      token: {TOKEN_A}
      teams: [team-a]
logging:
  format: json
"""
    )
    return path


@asynccontextmanager
async def cli(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBUS_")}
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def stderr_line(proc: asyncio.subprocess.Process, match: Callable[[str], bool]) -> str:
    assert proc.stderr is not None
    async with asyncio.timeout(30):
        while True:
            line = (await proc.stderr.readline()).decode()
            if not line:
                raise EOFError("the process ended before printing the expected line")
            if match(line):
                return line


async def test_serve_runs_until_sigterm(config: Path, redis: object) -> None:
    async with cli("--config", str(config), "serve", "--port", "0") as proc:
        line = await stderr_line(proc, lambda s: s.startswith("serving "))
        found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        assert found is not None, line
        async with httpx.AsyncClient(base_url=found.group(1), timeout=10) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).json() == {"status": "ready"}
            assert (await client.get("/v1/deliveries")).status_code == 401
            headers = {"Authorization": f"Bearer {TOKEN_A}"}
            assert (await client.get("/v1/deliveries", headers=headers)).status_code == 200
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
        assert proc.stderr is not None
        rest = (await proc.stderr.read()).decode()
        assert TOKEN_A not in line + rest


async def test_serve_bad_port_exits_2(config: Path, redis: object) -> None:
    async with cli("--config", str(config), "serve", "--host", "192.0.2.1", "--port", "1") as proc:
        async with asyncio.timeout(20):
            assert await proc.wait() == 2
        assert proc.stderr is not None
        assert "cannot listen on 192.0.2.1:1" in (await proc.stderr.read()).decode()


async def test_tail_prints_filtered_events(
    config: Path, make_settings: Callable[..., Settings], redis: object
) -> None:
    args = [
        "--config",
        str(config),
        "tail",
        "--team",
        "team-a",
        "--type",
        "capsule.*",
        "--json",
        "--count",
        "2",
    ]
    async with cli(*args) as proc, Publisher(make_settings()) as publisher:
        await stderr_line(proc, lambda s: s.startswith("tailing"))
        first = event("team-a", resource="one")
        await publisher.publish(event("team-b", resource="other-team"))
        await publisher.publish(event("team-a", "host.up", resource="other-type"))
        stream_id = await publisher.publish(first)
        await publisher.publish_transient(
            event("team-a", "capsule.state.changed", outcome=None, resource="two")
        )
        async with asyncio.timeout(20):
            out, _ = await proc.communicate()
        assert proc.returncode == 0
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [m["event"]["resource"]["id"] for m in lines] == ["one", "two"]
    assert lines[0]["stream_id"] == stream_id
    assert "stream_id" not in lines[1]


async def test_tail_human_lines_without_colour_off_a_terminal(
    config: Path, make_settings: Callable[..., Settings], redis: object
) -> None:
    async with (
        cli("--config", str(config), "tail", "--outcome", "error", "--count", "1") as proc,
        Publisher(make_settings()) as publisher,
    ):
        await stderr_line(proc, lambda s: s.startswith("tailing"))
        await publisher.publish(event("team-b", outcome="success", resource="ok"))
        await publisher.publish(
            event("team-b", "host.down", outcome="error", resource="h1", error="no heartbeat")
        )
        async with asyncio.timeout(20):
            out, _ = await proc.communicate()
    text = out.decode()
    assert "\x1b[" not in text
    assert re.search(r"team-b\s+host\.down\s+error\s+host:h1\s+system\s+error: no heartbeat", text)
    assert "capsule" not in text


async def test_tail_escapes_control_characters_and_stops_quietly_on_ctrl_c(
    config: Path, make_settings: Callable[..., Settings], redis: object
) -> None:
    # A publisher's error text must not retitle or clear the operator's terminal.
    async with (
        cli("--config", str(config), "tail") as proc,
        Publisher(make_settings()) as publisher,
    ):
        await stderr_line(proc, lambda s: s.startswith("tailing"))
        hostile = "disk\x1b]0;pwned\x07\x1b[2J full"
        await publisher.publish(event("team-b", "host.down", outcome="error", error=hostile))
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            _out, err = await proc.communicate()
    assert b"\x1b]0;" not in line and b"\x1b[2J" not in line
    assert b"disk\\x1b]0;pwned\\x07\\x1b[2J full" in line
    assert proc.returncode == 0
    assert b"Traceback" not in err and b"Aborted" not in err
