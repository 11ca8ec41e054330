"""Every example in the README and in ``--help`` runs as pasted (issue 12, item 14).

Examples are extracted, not copied: ``sh`` blocks of README.md and the
"Examples:" section of every command's help. Each ``eventbus`` command runs
in a shell against the real Redis (a unique prefix), with a configuration
made from the README's own YAML example. A few cannot run here, and the
reason is stated in ``NOT_RUN``; every other extracted command must
succeed, and a command that appears in neither list fails the test.

What is adjusted, and why: ``/etc/eventbus/eventbus.yaml`` is the test's
configuration; port 8080 becomes 0 (any free port, tests may run side by
side); a trailing ``| jq ...`` is left off (jq is not installed), and its
input is checked to be JSON lines instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import redis.asyncio as aioredis
import yaml
from click.testing import CliRunner

from eventbus.cli import cli
from eventbus.keys import Keys
from tests.consumers.sink import Sink
from tests.eventbus.brokers.conftest import delete_topology

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Commands shown but not run here: (what they match, why).
NOT_RUN: dict[str, str] = {
    r"\bchannels test\b": (
        "sends a real notification to the named service (tests never reach a real "
        "provider); checked to name a channel of the README's example instead"
    ),
    r"\balerts (show|ack|resolve)\b": (
        "acts on an alert a worker raised, and the examples' Redis has none; "
        "tests/consumers/cli/test_alerts.py runs each on a stored alert"
    ),
    r"\bsend '?(ntfy|discord)://": (
        "sends a real notification to a public service (ntfy.sh, Discord; tests never reach "
        "a real provider); its URLs are checked with 'urls verify' instead"
    ),
}
# `eventbus send` examples to a local receiver name this address; the test
# serves it (any free port) and checks that the notification arrived.
LOCAL_RECEIVER = "127.0.0.1:9000"
# How long-running commands show they are up.
READY = {"run": "daemon.ready", "serve": "http.listening", "tail": "tailing the live mirror"}
DEAD_LETTER_ID = "1732370000000-0"  # the id the dlq redrive example names


def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def _commands(text: str) -> Iterator[str]:
    """Shell lines of ``text`` that run eventbus, continuations joined, comments dropped."""
    for line in text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        program = next((w for w in words if "=" not in w or w.startswith("-")), "")
        if Path(program).name == "eventbus":
            yield shlex.join(words) if "|" not in line else _before_pipe(line)


def _before_pipe(line: str) -> str:
    return shlex.join(shlex.split(line.split("|", 1)[0], comments=True)) + " |"


def help_examples() -> list[str]:
    found: list[str] = []
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None
        subs = command.commands.values() if isinstance(command, click.Group) else [command]
        for sub in [command, *subs]:
            epilog = sub.epilog or ""
            if "Examples:" in epilog:
                block = epilog.split("Examples:", 1)[1].split("\n\n", 1)[0]
                found += _commands(block)
    return found


def examples() -> list[str]:
    found = [cmd for block in readme_blocks("sh") for cmd in _commands(block)]
    found += help_examples()
    return list(dict.fromkeys(found))


def _reason_not_run(command: str) -> str | None:
    return next((why for pattern, why in NOT_RUN.items() if re.search(pattern, command)), None)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory laid out like a checkout: config/, .venv, an events file."""
    (tmp_path / "config").symlink_to(ROOT / "config")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    config = yaml.safe_load(readme_blocks("yaml")[0])
    config["channels"].append({"name": "console", "type": "console"})
    config["http"] = {"tokens": [{"name": "docs", "token": "docs-token-0123456789"}]}
    (tmp_path / "eventbus.yaml").write_text(yaml.safe_dump(config))
    event = {
        "event": "capsule.create",
        "team_id": "team-1",
        "resource": {"id": "c1", "type": "capsule"},
    }
    (tmp_path / "events.jsonl").write_text(json.dumps(event) + "\n")
    return tmp_path


def _environment(workdir: Path, redis_url: str, prefix: str) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(workdir),
        "EVENTBUS_CONFIG": str(workdir / "eventbus.yaml"),
        "EVENTBUS_BROKER__REDIS_URL": redis_url,
        "EVENTBUS_BROKER__PREFIX": prefix,
        "EVENTBUS_HTTP__PORT": "0",
        "OPS_HOOK_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "TELEGRAM_TOKEN": "123456:ABC-docs-token",
    }


def _adjusted(command: str, workdir: Path) -> str:
    command = command.replace("/etc/eventbus/eventbus.yaml", str(workdir / "eventbus.yaml"))
    return re.sub(r"(--port|:)8080\b", r"\g<1>0", command).removesuffix(" |")


async def _run_until_ready(command: str, env: dict[str, str], cwd: Path, marker: str) -> str:
    # bash runs a single simple command by exec, so the signal reaches eventbus itself
    proc = await asyncio.create_subprocess_shell(
        command,
        executable="/bin/bash",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(30):
            while marker not in (line := (await proc.stdout.readline()).decode()):
                assert line, f"{command!r} exited before {marker!r}:\n" + "".join(seen)
                seen.append(line)
        proc.send_signal(signal.SIGINT if marker == READY["tail"] else signal.SIGTERM)
        async with asyncio.timeout(30):
            rest, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    output = "".join(seen) + rest.decode()
    assert proc.returncode == 0, f"{command!r} exited {proc.returncode}:\n{output}"
    return output


def _subcommand(command: str) -> str:
    words = [w for w in shlex.split(command) if "=" not in w or w.startswith("-")]
    after = words[1:]
    while after and after[0].startswith("-"):
        after = after[2:] if after[0] == "--config" else after[1:]
    return after[0] if after else ""


async def test_every_example_runs_as_pasted(
    workdir: Path, redis: aioredis.Redis, redis_url: str, amqp_url: str, prefix: str
) -> None:
    env = _environment(workdir, redis_url, prefix) | {"EVENTBUS_BROKER__AMQP_URL": amqp_url}
    receiver = Sink()
    await receiver.start()
    try:
        ran = await _run_examples(workdir, env, redis, prefix, f"127.0.0.1:{receiver.port}")
    finally:
        await receiver.stop()
        # `broker setup` examples declare RabbitMQ exchanges and queues of the prefix
        groups = {"delivery", *re.findall(r"--group (\S+)", " ".join(examples()))}
        await delete_topology(amqp_url, prefix, sorted(groups))
    assert ran >= 20
    assert receiver.received, "no 'eventbus send' example reached the local receiver"


async def _run_examples(
    workdir: Path, env: dict[str, str], redis: aioredis.Redis, prefix: str, local: str
) -> int:
    ran = 0
    for example in examples():
        if _reason_not_run(example) is not None:
            continue
        command = _adjusted(example, workdir).replace(LOCAL_RECEIVER, local)
        name = _subcommand(command)
        if DEAD_LETTER_ID in command:  # the dead letter it redrives, put back each time
            await redis.delete(Keys(prefix).dlq)
            await redis.xadd(Keys(prefix).dlq, {"payload": b"{}"}, id=DEAD_LETTER_ID)
        long_running = name in ("run", "serve") or (name == "tail" and "--count" not in command)
        if long_running:
            await _run_until_ready(command, env, workdir, READY[name])
        else:
            done = await asyncio.to_thread(
                subprocess.run,
                command,
                shell=True,
                executable="/bin/bash",
                env=env,
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, f"{example!r}:\n{done.stdout}{done.stderr}"
            if example.endswith(" |"):  # what jq would have read
                for line in done.stdout.splitlines():
                    json.loads(line)
        ran += 1
    return ran


def test_examples_not_run_say_why_and_still_make_sense() -> None:
    skipped = [example for example in examples() if _reason_not_run(example) is not None]
    assert skipped, "NOT_RUN lists commands that no longer appear: remove them"
    channels = {channel["name"] for channel in yaml.safe_load(readme_blocks("yaml")[0])["channels"]}
    for example in skipped:
        if " channels test " in example:
            assert example.split()[-1] in channels
        if " send " in example:
            urls = [word for word in shlex.split(example) if "://" in word]
            verified = CliRunner().invoke(cli, ["urls", "verify", "--no-body", *urls])
            assert urls and verified.exit_code == 0, verified.output


def test_python_example_publishes(redis_url: str, prefix: str) -> None:
    [snippet] = [block for block in readme_blocks("python") if "Publisher" in block]
    snippet = snippet.replace("redis://127.0.0.1:6379/0", redis_url)
    env = {**os.environ, "EVENTBUS_BROKER__PREFIX": prefix}
    done = subprocess.run(
        [sys.executable, "-c", snippet], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "stream id" in done.stdout
