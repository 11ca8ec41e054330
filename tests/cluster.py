"""A real local Redis Cluster for tests: 3 masters + 3 replicas on loopback.

``LocalCluster(base_port)`` starts six ``redis-server --cluster-enabled yes``
processes on ``base_port .. base_port + 5`` (each with its own directory and
pid file under the system temp dir), joins them with ``redis-cli --cluster
create --cluster-replicas 1`` and waits until every node reports
``cluster_state:ok``. ``stop()`` kills them and removes their directories. A
cluster left behind by a crashed run (same ports) is killed by its pid files
before a new one starts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

NODES = 6
NODE_TIMEOUT_MS = 2000


class ClusterError(RuntimeError):
    """The local cluster could not be started (the message says why)."""


def _wait(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)  # polling a child process we started: no event to wait on
    raise ClusterError(f"local Redis Cluster: timed out after {timeout}s waiting for {what}")


def _is_redis_pid(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@dataclass
class LocalCluster:
    base_port: int
    root: Path = field(init=False)
    killed: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.root = Path(tempfile.gettempdir()) / f"eventbus-test-cluster-{self.base_port}"

    @property
    def ports(self) -> list[int]:
        return [self.base_port + i for i in range(NODES)]

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` form with three seed nodes."""
        seeds = ",".join(f"127.0.0.1:{port}" for port in self.ports[:3])
        return f"redis+cluster://{seeds}/0"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            raise ClusterError("redis-server and redis-cli are needed for the cluster tests")
        self.stop()  # a leftover from a crashed run
        for port in self.ports:
            self._start_node(port)
        for port in self.ports:
            _wait(lambda port=port: self._pings(port), f"node {port} to answer PING")
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise ClusterError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}")
        self.wait_healthy()

    def _start_node(self, port: int) -> None:
        node_dir = self.root / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        options = {
            "port": str(port),
            "bind": "127.0.0.1",
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": str(NODE_TIMEOUT_MS),
            "save": "",
            "appendonly": "no",
            "daemonize": "yes",
            "dir": str(node_dir),
            "pidfile": str(node_dir / "redis.pid"),
            "logfile": str(node_dir / "redis.log"),
        }
        subprocess.run(
            ["redis-server", *(part for k, v in options.items() for part in (f"--{k}", v))],
            check=True,
            timeout=10,
        )

    def restart_node(self, port: int) -> None:
        """Start a killed node again: it rejoins (as a replica) from its nodes.conf."""
        self._start_node(port)
        _wait(lambda: self._pings(port), f"node {port} to answer PING")
        self.killed.discard(port)

    def stop(self) -> None:
        for pid_file in self.root.glob("*/redis.pid"):
            with contextlib.suppress(ValueError, OSError):
                pid = int(pid_file.read_text().strip())
                if _is_redis_pid(pid):
                    os.kill(pid, signal.SIGKILL)
                    _wait(lambda pid=pid: not _is_redis_pid(pid), f"pid {pid} to exit", 10)
        shutil.rmtree(self.root, ignore_errors=True)

    def kill_node(self, port: int) -> None:
        pid = int((self.root / str(port) / "redis.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not _is_redis_pid(pid), f"node {port} to exit", 10)
        self.killed.add(port)

    # -- state --------------------------------------------------------------

    def _pings(self, port: int) -> bool:
        try:
            return bool(self.client(port).ping())
        except redis.RedisError:
            return False

    def _info(self, port: int) -> dict[str, str]:
        raw = self.client(port).execute_command("CLUSTER", "INFO")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def _healthy(self) -> bool:
        try:
            for port in self.ports:
                if port in self.killed:
                    continue
                info = self._info(port)
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != "16384":
                    return False
                if int(info.get("cluster_known_nodes", 0)) != NODES:
                    return False
            if self.killed:
                return True
            # Every master has its replica attached (what a failover needs).
            rows = self.client(self.ports[0]).execute_command("CLUSTER", "SLOTS")
            return all(len(row) >= 4 for row in rows)
        except redis.RedisError:
            return False

    def wait_healthy(self, timeout: float = 60.0) -> None:
        _wait(self._healthy, "every live node to report cluster_state:ok", timeout)

    def master_of(self, key: str) -> int:
        """The port of the master serving ``key``'s slot."""
        alive = next(port for port in self.ports if port not in self.killed)
        node = self.client(alive)
        slot = int(node.execute_command("CLUSTER", "KEYSLOT", key))
        for start, end, master, *_replicas in node.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        raise ClusterError(f"no master serves slot {slot} of {key!r}")

    def masters(self) -> list[int]:
        alive = next(port for port in self.ports if port not in self.killed)
        rows = self.client(alive).execute_command("CLUSTER", "SLOTS")
        return sorted({int(row[2][1]) for row in rows})
