"""The notify protocol against real unix datagram sockets standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from consumers.sdnotify import Notifier, watchdog_loop

WAIT = 5.0  # generous upper bound for anything we wait on; never a fixed sleep


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def environ(self, **extra: str) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.env_value, **extra}

    async def receive(self) -> str:
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), WAIT)
        return data.decode()

    def pending(self) -> list[str]:
        """Every datagram already queued, without waiting."""
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return out


def _receiver() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


@pytest.fixture
def path_systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    sock = _receiver()
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    with sock:
        yield FakeSystemd(sock, str(path))


@pytest.fixture
def abstract_systemd() -> Iterator[FakeSystemd]:
    sock = _receiver()
    name = f"eventbus-test-{uuid.uuid4().hex}"
    sock.bind(b"\0" + name.encode())
    with sock:
        yield FakeSystemd(sock, "@" + name)


@pytest.fixture(params=["path", "abstract"])
def systemd(request: pytest.FixtureRequest) -> FakeSystemd:
    fixture: FakeSystemd = request.getfixturevalue(f"{request.param}_systemd")
    return fixture


@pytest.fixture
def notifier(systemd: FakeSystemd) -> Iterator[Notifier]:
    n = Notifier.from_environ(systemd.environ())
    yield n
    n.close()


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        pytest.param(lambda n: n.ready(), "READY=1", id="ready"),
        pytest.param(
            lambda n: n.ready("consuming group delivery"),
            "READY=1\nSTATUS=consuming group delivery",
            id="ready-with-status",
        ),
        pytest.param(
            lambda n: n.status("draining 3 in flight"), "STATUS=draining 3 in flight", id="status"
        ),
        pytest.param(lambda n: n.watchdog(), "WATCHDOG=1", id="watchdog"),
        pytest.param(lambda n: n.stopping(), "STOPPING=1", id="stopping"),
        pytest.param(
            lambda n: n.stopping("draining"), "STOPPING=1\nSTATUS=draining", id="stopping-status"
        ),
        pytest.param(
            lambda n: n.status("line one\nREADY=1\r\nx"),
            "STATUS=line one READY=1 x",
            id="status-newlines-cannot-inject",
        ),
    ],
)
async def test_exact_datagrams(
    systemd: FakeSystemd, notifier: Notifier, send: Callable[[Notifier], None], expected: str
) -> None:
    send(notifier)
    assert await systemd.receive() == expected
    assert systemd.pending() == []


async def test_lifecycle_in_order(systemd: FakeSystemd, notifier: Notifier) -> None:
    notifier.status("connecting to broker")
    notifier.ready("consuming")
    notifier.watchdog()
    notifier.stopping()
    received = [await systemd.receive() for _ in range(4)]
    assert received == [
        "STATUS=connecting to broker",
        "READY=1\nSTATUS=consuming",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


async def test_reloading_carries_monotonic_usec(systemd: FakeSystemd, notifier: Notifier) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading("reloading config")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    lines = (await systemd.receive()).split("\n")
    assert lines[0] == "RELOADING=1"
    key, value = lines[1].split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after
    assert lines[2:] == ["STATUS=reloading config"]


def test_enabled_and_repr(systemd: FakeSystemd, notifier: Notifier) -> None:
    assert notifier.enabled
    assert systemd.env_value in repr(notifier)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, None, id="unset"),
        pytest.param({"WATCHDOG_USEC": "30000000"}, 15.0, id="30s-pings-every-15s"),
        pytest.param({"WATCHDOG_USEC": "3000"}, 0.0015, id="sub-second"),
        pytest.param({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 15.0, id="our-pid"),
        pytest.param({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None, id="other-pid"),
        pytest.param({"WATCHDOG_USEC": "0"}, None, id="zero"),
        pytest.param({"WATCHDOG_USEC": "soon"}, None, id="garbage-usec"),
        pytest.param({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, None, id="garbage-pid"),
        pytest.param({"WATCHDOG_USEC": ""}, None, id="empty"),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    environ = {"NOTIFY_SOCKET": "/run/nowhere", **environ}
    assert Notifier.from_environ(environ, pid=4242).watchdog_interval() == expected


def test_watchdog_pid_defaults_to_this_process() -> None:
    base = {"NOTIFY_SOCKET": "/run/nowhere", "WATCHDOG_USEC": "2000000"}
    ours = Notifier.from_environ({**base, "WATCHDOG_PID": str(os.getpid())})
    theirs = Notifier.from_environ({**base, "WATCHDOG_PID": str(os.getpid() + 1)})
    assert ours.watchdog_interval() == 1.0
    assert theirs.watchdog_interval() is None


def test_no_notify_socket_is_a_noop() -> None:
    n = Notifier.from_environ({"WATCHDOG_USEC": "1000000"})
    assert not n.enabled
    with capture_logs() as logs:
        n.ready("x")
        n.status("x")
        n.watchdog()
        n.reloading()
        n.stopping()
        n.close()
    assert logs == []
    assert "disabled" in repr(n)


@pytest.mark.parametrize("value", ["vsock:2:1234", "relative/path", "@"])
def test_unsupported_socket_is_disabled_and_logged(value: str) -> None:
    with capture_logs() as logs:
        n = Notifier.from_environ({"NOTIFY_SOCKET": value})
        n.ready()
    assert not n.enabled
    assert [entry["event"] for entry in logs] == ["sdnotify.unsupported_socket"]


def test_send_failure_is_logged_not_raised(tmp_path: Path) -> None:
    n = Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with capture_logs() as logs:
        n.ready("up")
        n.watchdog()
    n.close()
    assert [entry["event"] for entry in logs] == ["sdnotify.failed", "sdnotify.failed"]
    assert logs[0]["message"] == "READY=1"
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["socket"] == str(tmp_path / "gone.sock")


async def test_full_queue_drops_instead_of_blocking(path_systemd: FakeSystemd) -> None:
    n = Notifier.from_environ(path_systemd.environ())
    with capture_logs() as logs:
        # Nobody reads, so the receiver's queue fills; the sender must not block.
        for _ in range(10_000):
            n.watchdog()
            if logs:
                break
    n.close()
    assert logs, "expected the queue to fill up within 10000 datagrams"
    assert logs[0]["event"] == "sdnotify.failed"
    assert "BlockingIOError" in logs[0]["error"] or "Resource" in logs[0]["error"]


class Health:
    """A scripted health check that reports each call to the test."""

    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.calls = 0
        self.reached = asyncio.Event()

    def __call__(self) -> bool:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if self.calls == len(self.answers):
            self.reached.set()
        return answer


async def test_watchdog_loop_pings_only_while_healthy(path_systemd: FakeSystemd) -> None:
    n = Notifier.from_environ(path_systemd.environ(WATCHDOG_USEC="2000"))  # every 1 ms
    health = Health([True, True, True, False, False, False])
    with capture_logs() as logs:
        task = asyncio.create_task(watchdog_loop(n, health))
        try:
            await asyncio.wait_for(health.reached.wait(), WAIT)
            # Three healthy checks sent three pings; the unhealthy ones sent none.
            assert path_systemd.pending() == ["WATCHDOG=1"] * 3

            health.answers.append(True)
            health.reached.clear()
            assert await path_systemd.receive() == "WATCHDOG=1"
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    n.close()
    events = [entry["event"] for entry in logs]
    assert events == ["sdnotify.watchdog_withheld", "sdnotify.watchdog_resumed"]


async def test_watchdog_loop_treats_a_raising_check_as_unhealthy(
    path_systemd: FakeSystemd,
) -> None:
    n = Notifier.from_environ(path_systemd.environ(WATCHDOG_USEC="2000"))
    called = asyncio.Event()

    def broken() -> bool:
        called.set()
        raise ValueError("boom")

    with capture_logs() as logs:
        task = asyncio.create_task(watchdog_loop(n, broken))
        await asyncio.wait_for(called.wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    n.close()
    assert path_systemd.pending() == []
    assert "sdnotify.health_check_failed" in [entry["event"] for entry in logs]


async def test_watchdog_loop_returns_without_watchdog(path_systemd: FakeSystemd) -> None:
    n = Notifier.from_environ(path_systemd.environ())
    await asyncio.wait_for(watchdog_loop(n, lambda: True), WAIT)
    assert path_systemd.pending() == []


async def test_watchdog_loop_returns_without_socket() -> None:
    n = Notifier.from_environ({"WATCHDOG_USEC": "2000"})
    await asyncio.wait_for(watchdog_loop(n, lambda: True), WAIT)


async def test_watchdog_loop_explicit_interval(path_systemd: FakeSystemd) -> None:
    n = Notifier.from_environ(path_systemd.environ())
    task = asyncio.create_task(watchdog_loop(n, lambda: True, interval=0.001))
    try:
        assert [await path_systemd.receive() for _ in range(2)] == ["WATCHDOG=1"] * 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        n.close()
