"""The `eventbus` command line: help, config check, publish."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import redis as sync_redis
from click.testing import CliRunner, Result

from eventbus.cli import cli
from eventbus.envelope import decode
from eventbus.keys import Keys

SECRETS = ["hunter2pw", "SECRETTOKEN", "whsec_c2VjcmV0c2VjcmV0c2VjcmV0", "tok3n-v4lue"]
CLOSED = "redis://:hunter2pw@127.0.0.1:1/0"


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# -- help ------------------------------------------------------------------------------


def _commands() -> list[tuple[str, ...]]:
    ctx = click.Context(cli)
    found: list[tuple[str, ...]] = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += [(name, sub) for sub in command.list_commands(ctx)]
        else:
            found.append((name,))
    return found


def test_group_help_shows_examples_and_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert "eventbus publish --type capsule.create" in result.output
    for name in ("publish", "config"):
        assert name in result.output


def test_every_command_is_listed() -> None:
    commands = _commands()
    assert ("publish",) in commands
    assert ("config", "check") in commands


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_every_command_help_shows_examples(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output
    assert f"eventbus {path[0]}" in result.output or f"{path[0]} {path[-1]}" in result.output


# -- config check -------------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str) -> Path:
        path = tmp_path / "eventbus.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


GOOD = """\
broker:
  redis_url: redis://:hunter2pw@redis.internal:6379/0
  prefix: checked
http:
  tokens:
    - name: dash
      token: tok3n-v4lue
channels:
  - name: console
    type: console
  - name: ops-chat
    url: telegram://123456:SECRETTOKEN@telegram?chats=-100123
subscriptions:
  - name: capsule-failures
    team: team-1
    events: ["capsule.*", host.down]
    outcomes: [error]
    channels: [console, ops-chat]
  - name: "off"
    team: "*"
    events: ["*"]
    channels: [console]
    enabled: false
"""


def test_config_check_ok_prints_a_redacted_summary(config_file) -> None:  # type: ignore[no-untyped-def]
    path = config_file(GOOD)
    for args in (
        ("--config", str(path), "config", "check"),
        ("config", "check", "--config", str(path)),
    ):
        result = run(*args)
        assert result.exit_code == 0, result.output
        out = result.output
        assert "configuration OK" in out
        assert "redis://:***@redis.internal:6379/0" in out
        assert "prefix=checked" in out
        assert "ops-chat" in out and "telegram" in out
        assert "capsule-failures" in out
        assert (
            "receives: capsule.create, capsule.destroy, capsule.pause, capsule.resume, host.down"
            in out
        )
        assert "[disabled]" in out
        no_secrets(out)


def test_config_check_from_eventbus_config(config_file) -> None:  # type: ignore[no-untyped-def]
    path = config_file(GOOD)
    result = run("config", "check", env={"EVENTBUS_CONFIG": str(path)})
    assert result.exit_code == 0, result.output
    assert str(path) in result.output


def test_config_check_example_file() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "eventbus.example.yaml"
    result = run("--config", str(example), "config", "check")
    assert result.exit_code == 0, result.output
    assert "everything-to-console" in result.output


def test_config_check_lists_every_problem_and_exits_2(config_file) -> None:  # type: ignore[no-untyped-def]
    path = config_file("""\
        broker:
          redis_url: redis://:hunter2pw@redis.internal:6379/0
        channels:
          - name: ops-chat
            url: telegram://123456:SECRETTOKEN@telegram
          - name: ops-chat
            type: console
          - name: pigeon
            url: nosuch://SECRETTOKEN@host
        subscriptions:
          - name: s
            team: team-1
            events: ["capsule.*"]
            channels: [ops-chat, pager]
        """)
    result = run("--config", str(path), "config", "check")
    assert result.exit_code == 2, result.output
    out = result.output
    assert "configuration problems:" in out
    assert f"{path}:6: duplicate channel name 'ops-chat'" in out
    assert f"{path}:4: channel 'ops-chat': telegram channel has no chat" in out
    assert f"{path}:8: channel 'pigeon': unknown channel type 'nosuch'" in out
    assert f"{path}:14: subscription 's' names channel 'pager'" in out
    assert out.count("\n  - ") == 4
    assert "configuration OK" not in out
    no_secrets(out)


def test_config_check_model_errors_exit_2(config_file) -> None:  # type: ignore[no-untyped-def]
    path = config_file("broker:\n  prefx: x\nconsumer:\n  claim_idle: soon\n")
    result = run("--config", str(path), "config", "check")
    assert result.exit_code == 2
    assert f"{path}:2: unknown key 'broker.prefx'" in result.output
    assert f"{path}:4: 'consumer.claim_idle'" in result.output


def test_config_check_missing_file_exits_2(tmp_path: Path) -> None:
    result = run("config", "check", "--config", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "cannot read the file" in result.output


# -- publish -----------------------------------------------------------------------------------


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[sync_redis.Redis]:
    client = sync_redis.Redis.from_url(redis_url)
    yield client
    keys = [*client.scan_iter(match=f"{prefix}*"), *client.scan_iter(match=f"{{{prefix}}}*")]
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def bus_config(tmp_path: Path, redis_url: str, prefix: str) -> Path:
    path = tmp_path / "bus.yaml"
    path.write_text(f"broker:\n  redis_url: {redis_url}\n  prefix: {prefix}\n")
    return path


def entries(client: sync_redis.Redis, prefix: str) -> list[tuple[str, dict[bytes, bytes]]]:
    return [(i.decode(), f) for i, f in client.xrange(Keys(prefix).events)]


@pytest.mark.integration
def test_publish_from_flags(bus_config: Path, client: sync_redis.Redis, prefix: str) -> None:
    result = run(
        "--config", str(bus_config), "publish",
        "--type", "capsule.create", "--outcome", "error", "--team", "team-1",
        "--resource", "capsule:c1", "--actor", "user:u1",
        "--meta", "region=eu-west", "--meta", "zone=a=b", "--error", "quota exceeded",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    words = result.output.split()
    assert words[0] == "event" and words[2] == "stream", result.output
    event_id, stream_id = words[1], words[3]
    [(entry_id, fields)] = entries(client, prefix)
    assert entry_id == stream_id
    assert list(fields) == [b"payload"]
    ev = decode(fields[b"payload"])
    assert ev.id == event_id
    assert ev.event == "capsule.create"
    assert ev.outcome_name == "error"
    assert ev.error == "quota exceeded"
    assert ev.team_id == "team-1"
    assert (ev.resource.type, ev.resource.id) == ("capsule", "c1")
    assert (ev.actor.type, ev.actor.id) == ("user", "u1")
    assert ev.metadata == {"region": "eu-west", "zone": "a=b"}


@pytest.mark.integration
def test_publish_with_settings_from_the_environment(
    redis_url: str, client: sync_redis.Redis, prefix: str
) -> None:
    env = {"EVENTBUS_BROKER__REDIS_URL": redis_url, "EVENTBUS_BROKER__PREFIX": prefix}
    result = run(
        "publish", "--type", "host.down", "--team", "ops", "--resource", "host:h1", env=env
    )
    assert result.exit_code == 0, result.output
    [(entry_id, fields)] = entries(client, prefix)
    assert result.output.split()[3] == entry_id
    assert decode(fields[b"payload"]).actor.type == "system"


@pytest.mark.integration
def test_publish_transient(bus_config: Path, client: sync_redis.Redis, prefix: str) -> None:
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(f"{prefix}:live:team-1")
        assert pubsub.get_message(timeout=5) is not None
        result = run(
            "--config", str(bus_config), "publish", "--transient",
            "--type", "capsule.state.changed", "--team", "team-1", "--resource", "capsule:c1",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "published live only (1 listeners)" in result.output
        event_id = result.output.split()[1]
        msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert msg is not None
        assert json.loads(msg["data"])["event"]["id"] == event_id
        assert "stream_id" not in json.loads(msg["data"])
    finally:
        pubsub.close()
    assert client.exists(Keys(prefix).events) == 0


@pytest.mark.integration
def test_publish_transient_type_durably_is_refused(
    bus_config: Path, client: sync_redis.Redis, prefix: str
) -> None:
    result = run(
        "--config", str(bus_config), "publish",
        "--type", "capsule.state.changed", "--team", "team-1", "--resource", "capsule:c1",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "transient event type" in result.output
    assert client.exists(Keys(prefix).events) == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["--team", "t", "--resource", "capsule:c1"], "missing --type", id="no-type"),
        pytest.param(
            ["--type", "capsule.create", "--team", "t", "--resource", "c1"],
            "is not TYPE:ID",
            id="bad-resource",
        ),
        pytest.param(
            ["--type", "capsule.create", "--team", "t", "--resource", "capsule:c1", "--meta", "x"],
            "is not KEY=VALUE",
            id="bad-meta",
        ),
        pytest.param(
            ["--type", "Capsule", "--team", "t", "--resource", "capsule:c1"],
            "dotted lowercase",
            id="bad-type",
        ),
        pytest.param(
            ["--type", "capsule.create", "--team", "t", "--resource", "capsule:c1", "--error", "x"],
            "only allowed with outcome 'error'",
            id="error-without-outcome",
        ),
        pytest.param(
            [
                "--type",
                "capsule.create",
                "--team",
                "t",
                "--resource",
                "capsule:c1",
                "--actor",
                "robot:r1",
            ],
            "actor.type",
            id="bad-actor",
        ),
    ],
)
def test_publish_usage_errors_exit_2(args: list[str], needle: str) -> None:
    # never reaches the broker: the closed port would exit 3
    result = run("publish", *args, env={"EVENTBUS_BROKER__REDIS_URL": CLOSED})
    assert result.exit_code == 2, result.output
    assert needle in result.output
    no_secrets(result.output)


def _line(**changes: Any) -> str:
    data = {"event": "capsule.create", "team_id": "team-1", "resource": {"id": "c", "type": "x"}}
    data.update(changes)
    return json.dumps(data)


@pytest.mark.integration
def test_publish_file_publishes_good_lines_and_reports_bad_ones(
    tmp_path: Path, bus_config: Path, client: sync_redis.Redis, prefix: str
) -> None:
    lines = [
        _line(resource={"id": "c1", "type": "capsule"}),  # 1
        "{not json",  # 2
        _line(event="Bad.Type"),  # 3
        "",  # 4 blank: skipped
        _line(resource={"id": "c2", "type": "capsule"}, outcome="error", error="boom"),  # 5
        _line(event="capsule.state.changed"),  # 6 transient type, durably
        "[1, 2]",  # 7
        _line(resource={"id": "c3", "type": "capsule"}),  # 8
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    result = run("--config", str(bus_config), "publish", "--file", str(events))
    assert result.exit_code == 1, result.output
    out = result.output
    assert "published 3, rejected 4" in out
    for number, reason in [
        (2, "Expecting property name"),
        (3, "dotted lowercase"),
        (6, "transient event type"),
        (7, "not a JSON object"),
    ]:
        assert any(
            line.strip().startswith(f"line {number}:") and reason in line
            for line in out.splitlines()
        ), (number, out)
    assert "line 4:" not in out
    published = [decode(f[b"payload"]) for _, f in entries(client, prefix)]
    assert [e.resource.id for e in published] == ["c1", "c2", "c3"]


@pytest.mark.integration
def test_publish_file_all_good_exits_0(
    tmp_path: Path, bus_config: Path, client: sync_redis.Redis, prefix: str
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(_line(metadata={"n": str(i)}) + "\n" for i in range(1203)))
    result = run("--config", str(bus_config), "publish", "--file", str(events))
    assert result.exit_code == 0, result.output
    assert "published 1203, rejected 0" in result.output
    assert client.xlen(Keys(prefix).events) == 1203
    first = decode(client.xrange(Keys(prefix).events, count=1)[0][1][b"payload"])
    assert first.metadata == {"n": "0"}


@pytest.mark.integration
def test_publish_file_from_stdin(bus_config: Path, client: sync_redis.Redis, prefix: str) -> None:
    result = run(
        "--config", str(bus_config), "publish", "--file", "-", input=_line() + "\n" + _line()
    )
    assert result.exit_code == 0, result.output
    assert "published 2, rejected 0" in result.output
    assert client.xlen(Keys(prefix).events) == 2


@pytest.mark.integration
def test_publish_file_transient(
    tmp_path: Path, bus_config: Path, client: sync_redis.Redis, prefix: str
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(_line(event="capsule.state.changed") + "\n" + _line() + "\n")
    result = run("--config", str(bus_config), "publish", "--transient", "--file", str(events))
    assert result.exit_code == 0, result.output
    assert "published 2, rejected 0" in result.output
    assert client.exists(Keys(prefix).events) == 0


def test_publish_file_missing_exits_2(tmp_path: Path) -> None:
    result = run(
        "publish",
        "--file",
        str(tmp_path / "nope.jsonl"),
        env={"EVENTBUS_BROKER__REDIS_URL": CLOSED},
    )
    assert result.exit_code == 2
    assert "cannot read" in result.output


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            ["--type", "capsule.create", "--team", "t", "--resource", "capsule:c1"], id="flags"
        ),
        pytest.param(
            [
                "--transient",
                "--type",
                "capsule.state.changed",
                "--team",
                "t",
                "--resource",
                "capsule:c1",
            ],
            id="transient",
        ),
        pytest.param(["--file", "-"], id="file"),
    ],
)
def test_unreachable_broker_exits_3(args: list[str]) -> None:
    env = {"EVENTBUS_BROKER__REDIS_URL": CLOSED, "EVENTBUS_BROKER__PUBLISH_RETRIES": "0"}
    result = run("publish", *args, env=env, input=_line() + "\n")
    assert result.exit_code == 3, result.output
    assert "Redis is unreachable" in result.output
    assert "127.0.0.1:1" in result.output
    assert "EVENTBUS_BROKER__REDIS_URL" in result.output  # says where to fix it
    no_secrets(result.output)
