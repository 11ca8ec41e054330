"""``eventbus publish``: from flags, from a JSONL file, and its exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from eventbus.envelope import decode
from eventbus.keys import Keys
from tests.eventbus.cli_support import CLOSED, no_secrets, run

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
@pytest.mark.parametrize(
    ("flags", "stored", "level"),
    [
        pytest.param(["--severity", "critical"], "critical", "critical", id="critical"),
        pytest.param(["--severity", "WARNING"], "warning", "warning", id="any-case"),
        pytest.param(["--outcome", "error"], None, "error", id="absent-error-outcome"),
        pytest.param([], None, "info", id="absent"),
    ],
)
def test_publish_with_severity(
    bus_config: Path,
    client: sync_redis.Redis,
    prefix: str,
    flags: list[str],
    stored: str | None,
    level: str,
) -> None:
    result = run(
        "--config", str(bus_config), "publish",
        "--type", "host.down", "--team", "ops", "--resource", "host:db1", *flags,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [(_entry_id, fields)] = entries(client, prefix)
    assert json.loads(fields[b"payload"]).get("severity") == stored
    assert decode(fields[b"payload"]).level == level


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
        assert "published live only (1 listener)" in result.output
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
        pytest.param(
            ["--type", "host.down", "--team", "t", "--resource", "host:h1", "--severity", "loud"],
            "'loud' is not one of 'debug', 'info', 'warning', 'error', 'critical'",
            id="bad-severity",
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
        (2, "not JSON (Expecting property name enclosed in double quotes at column 2)"),
        (3, "dotted lowercase"),
        (6, "transient event type"),
        (7, "not a JSON object but a JSON list"),
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
