"""Installs that fit who installs them, checked without building a new virtualenv.

Each test runs the CLI in a subprocess whose import system refuses the
packages of an extra (a ``sys.meta_path`` finder raising
``ModuleNotFoundError``), as if ``pip install eventbus`` had left them out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = (
    "httpx",
    "httpx_aiohttp",
    "aiohttp",
    "aiosmtplib",
    "jinja2",
    "starlette",
    "sse_starlette",
    "anyio",
    "uvicorn",
    "prometheus_client",
)
EMBEDDED = ("fakeredis", "lupa")
RABBITMQ = ("aio_pika",)
CLOSED = "redis://127.0.0.1:1/0"

_BLOCKER = """
import sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Blocker())
"""


def python(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBUS_")}
    env |= {"EVENTBUS_BROKER__REDIS_URL": CLOSED, "EVENTBUS_BROKER__PUBLISH_RETRIES": "0"}
    program = f"BLOCKED = {blocked!r}\n{_BLOCKER}\n{code}"
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=60
    )


def eventbus(blocked: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    return python(blocked, f"from eventbus.cli import main\nmain({list(args)!r})")


BASE_ONLY = WORKER + EMBEDDED + RABBITMQ


def test_the_blocker_blocks() -> None:
    result = python(BASE_ONLY, "import starlette")
    assert result.returncode == 1 and "blocked" in result.stderr


def test_publishers_need_only_the_base_install() -> None:
    code = (
        "import publishers, eventbus.live\n"
        "from publishers import Publisher, SyncPublisher\n"
        "assert not any(m.partition('.')[0] == 'consumers' for m in sys.modules)"
    )
    result = python(BASE_ONLY, code)
    assert result.returncode == 0, result.stderr


def test_help_lists_every_command_on_the_base_install() -> None:
    result = eventbus(BASE_ONLY, "--help")
    assert result.returncode == 0, result.stderr
    for name in ("publish", "run", "serve", "deliveries", "dlq", "channels", "urls", "tail"):
        assert f"  {name} " in result.stdout


def test_publish_works_on_the_base_install() -> None:
    assert eventbus(BASE_ONLY, "publish", "--help").returncode == 0
    # a real publish attempt, all the way to the (closed) broker: exit 3, not an ImportError
    result = eventbus(
        BASE_ONLY, "publish", "--type", "host.down", "--team", "t", "--resource", "host:h1"
    )
    assert result.returncode == 3, result.stderr
    assert "Redis is unreachable" in result.stderr


def test_publish_never_imports_consumers() -> None:
    # consumers blocked outright: publish must not even read its command table
    result = eventbus(
        ("consumers",), "publish", "--type", "host.down", "--team", "t", "--resource", "host:h1"
    )
    assert result.returncode == 3, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["run"], id="run"),
        pytest.param(["serve"], id="serve"),
        pytest.param(["urls", "verify", "ntfy://ntfy.sh/x"], id="urls"),
        pytest.param(["config", "check"], id="config"),
        pytest.param(["tail", "--help"], id="tail-help"),
    ],
)
def test_a_daemon_command_without_the_worker_extra_names_it(args: list[str]) -> None:
    result = eventbus(BASE_ONLY, *args)
    assert result.returncode == 2, result.stderr
    assert "pip install 'eventbus[worker]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_embedded_without_its_extra_names_it() -> None:
    example = str(Path(__file__).resolve().parents[1] / "config" / "eventbus.example.yaml")
    result = eventbus(EMBEDDED, "--config", example, "run", "--embedded", "--embedded-port", "0")
    assert result.returncode == 2, result.stderr
    assert "pip install 'eventbus[embedded]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
