"""``serve``, ``tail`` and ``publish`` with ``broker.kind: rabbitmq``, as real processes.

(``run`` in RabbitMQ mode: tests/consumers/modes/test_worker_processes.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import httpx
import pytest

from consumers.server.sse import REPLAY_HEADER
from eventbus.brokers.rabbitmq import RabbitMQ, Topology
from eventbus.config import load_settings
from publishers.client import Publisher
from tests.consumers.cli.test_serve_tail import cli, stderr_line
from tests.consumers.server.conftest import TOKEN_A, event

pytestmark = pytest.mark.integration

GROUP = "delivery"


def write_config(path: Path, redis_url: str, amqp_url: str, prefix: str) -> Path:
    path.write_text(
        f"""
broker:
  kind: rabbitmq
  redis_url: {redis_url}
  amqp_url: {amqp_url}
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


@pytest.fixture
async def config(
    tmp_path: Path, redis_url: str, amqp_url: str, prefix: str, redis: object
) -> AsyncIterator[Path]:
    yield write_config(tmp_path / "eventbus.yaml", redis_url, amqp_url, prefix)
    connection = await aio_pika.connect(amqp_url)
    try:
        await Topology(prefix).delete(await connection.channel(), [GROUP])
    finally:
        await connection.close()


async def served_url(proc: asyncio.subprocess.Process) -> str:
    line = await stderr_line(proc, lambda s: s.startswith("serving "))
    found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
    assert found is not None, line
    return found.group(1)


async def sse_lines(stream: AsyncIterator[str], until: str) -> list[str]:
    """Lines of an SSE stream up to (and including) the first containing ``until``."""
    lines: list[str] = []
    async with asyncio.timeout(20):
        async for line in stream:
            lines.append(line)
            if until in line:
                return lines
    raise AssertionError(f"the stream ended before {until!r}: {lines}")


async def test_serve_streams_rabbitmq_live_and_says_replay_is_unavailable(config: Path) -> None:
    headers = {"Authorization": f"Bearer {TOKEN_A}", "Last-Event-ID": "1700000000000-0"}
    async with cli("--config", str(config), "serve", "--port", "0") as proc:
        base = await served_url(proc)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.get("/readyz")).json() == {"status": "ready"}
            async with client.stream("GET", "/v1/events/stream", headers=headers) as response:
                assert response.status_code == 200
                assert response.headers[REPLAY_HEADER] == "unavailable"
                stream = response.aiter_lines()
                notice = await sse_lines(stream, "data:")
                assert "event: replay-unavailable" in notice
                assert "not available with broker.kind: rabbitmq" in notice[-1]
                async with Publisher(load_settings(config)) as bus:
                    await bus.publish(event("team-b", resource="other-team"))
                    event_id = await bus.publish(event("team-a", resource="mine"))
                got = await sse_lines(stream, event_id)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
    data = [json.loads(line[5:]) for line in got if line.startswith("data:")]
    assert [d["resource"]["id"] for d in data] == ["mine"], "team-b's event is not shown"


class Proxy:
    """A TCP relay to RabbitMQ that can be cut: the broker becomes unreachable."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()


async def test_readyz_fails_while_rabbitmq_is_unreachable(
    tmp_path: Path, redis_url: str, amqp_url: str, prefix: str, redis: object
) -> None:
    proxy = Proxy(int(amqp_url.rsplit(":", 1)[1].split("/")[0]))
    port = await proxy.start()
    proxied = f"amqp://guest:guest@127.0.0.1:{port}/"
    path = write_config(tmp_path / "eventbus.yaml", redis_url, proxied, prefix)
    try:
        async with cli("--config", str(path), "serve", "--port", "0") as proc:
            base = await served_url(proc)
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                assert (await client.get("/readyz")).status_code == 200
                await proxy.cut()  # the port is closed from now on
                await stderr_line(proc, lambda s: "sse.mirror_lost" in s)
                ready = await client.get("/readyz")
        assert ready.status_code == 503
        reason = ready.json()["reason"]
        assert f"unreachable at amqp://guest:***@127.0.0.1:{port}/" in reason
        assert "guest:guest" not in reason
    finally:
        await proxy.cut()
        connection = await aio_pika.connect(amqp_url)
        with contextlib.suppress(Exception):
            await Topology(prefix).delete(await connection.channel(), [])
        await connection.close()


async def test_serve_exits_3_when_rabbitmq_is_not_there(
    tmp_path: Path, redis_url: str, prefix: str, redis: object
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = write_config(
        tmp_path / "eventbus.yaml", redis_url, f"amqp://guest:guest@127.0.0.1:{port}/", prefix
    )
    async with cli("--config", str(path), "serve", "--port", "0") as proc:
        async with asyncio.timeout(30):
            _out, err = await proc.communicate()
    assert proc.returncode == 3, err.decode()
    assert "EVENTBUS_BROKER__AMQP_URL" in err.decode() and b"guest:guest" not in err


async def test_tail_prints_rabbitmq_live_events(config: Path) -> None:
    args = ["--config", str(config), "tail", "--team", "team-a", "--json", "--count", "2"]
    async with cli(*args) as proc:
        await stderr_line(proc, lambda s: s.startswith("tailing"))
        async with Publisher(load_settings(config)) as bus:
            await bus.publish(event("team-b", resource="other-team"))
            await bus.publish(event("team-a", resource="one"))
            await bus.publish_transient(
                event("team-a", "capsule.state.changed", outcome=None, resource="two")
            )
        async with asyncio.timeout(20):
            out, _ = await proc.communicate()
    assert proc.returncode == 0
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [m["event"]["resource"]["id"] for m in lines] == ["one", "two"]


async def test_publish_command_goes_through_rabbitmq(config: Path, amqp_url: str) -> None:
    args = ["--config", str(config), "publish", "--type", "host.down", "--team", "team-a"]
    async with cli(*args, "--resource", "host:h1", "--outcome", "error") as proc:
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    settings = load_settings(config)
    async with RabbitMQ.from_settings(settings) as broker:
        [message] = await broker.consume(GROUP, "checker", 10, 5.0)
        body = json.loads(message.payload or b"")
        await broker.ack(GROUP, [message.id])
    assert body["event"] == "host.down" and body["resource"] == {"id": "h1", "type": "host"}
    assert out.decode().strip() == f"event {body['id']} published to RabbitMQ"


async def test_run_serves_readyz_metrics_and_the_live_feed_from_rabbitmq(config: Path) -> None:
    """``eventbus run`` in RabbitMQ mode: its HTTP side reads the same broker."""
    async with cli("--config", str(config), "run") as proc:
        line = await stderr_line(proc, lambda s: "http.listening" in s)
        base = json.loads(line)["url"]
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.get("/readyz")).json() == {"status": "ready"}
            headers = {"Authorization": f"Bearer {TOKEN_A}"}
            async with client.stream("GET", "/v1/events/stream", headers=headers) as response:
                assert REPLAY_HEADER not in response.headers  # no Last-Event-ID sent
                stream = response.aiter_lines()
                await sse_lines(stream, ": connected")
                async with Publisher(load_settings(config)) as bus:
                    event_id = await bus.publish(event("team-a", resource="seen"))
                await sse_lines(stream, event_id)
            metrics = (await client.get("/metrics")).text  # measured once at start already
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
    assert 'eventbus_stream_lag{group="delivery",partition="0"}' in metrics
    assert 'eventbus_queue_depth{group="delivery"}' in metrics
