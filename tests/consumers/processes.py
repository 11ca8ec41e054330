"""``eventbus run`` in a subprocess, on the code under test (this checkout)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

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
