"""``eventbus run`` in a subprocess, on the code under test (this checkout)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

ROOT = Path(__file__).resolve().parents[2]


async def start_worker(path: Path, name: str, *, output: bool = True) -> asyncio.subprocess.Process:
    """A worker process named ``name`` on the config at ``path``.

    ``output``: its stdout and stderr together on ``stdout`` (for tests that
    read its log lines); otherwise both go to /dev/null.
    """
    env = {"EVENTBUS_CONSUMER__NAME": name, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eventbus",
        "--config",
        str(path),
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE if output else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.STDOUT if output else asyncio.subprocess.DEVNULL,
    )


async def joined(
    redis: aioredis.Redis, stream: str, group: str, names: set[str], timeout: float = 30.0
) -> None:
    """Wait until every consumer in ``names`` has read from ``group``.

    A worker process reads only once its signal handlers are installed, so a
    SIGTERM sent after this stops it gracefully (before, it would kill it).
    """
    async with asyncio.timeout(timeout):
        while True:  # polled: the group has no notification for a new consumer
            try:
                found = {c["name"].decode() for c in await redis.xinfo_consumers(stream, group)}
            except ResponseError:  # no group (or stream) yet
                found = set()
            if names <= found:
                return
            await asyncio.sleep(0.05)
