"""``eventbus channels add|update|remove`` and ``eventbus subscriptions ...`` (in-process).

They run through click's CliRunner, with the ``subscriptions`` entry point
added here when the installed metadata does not have it yet (the venv is
reinstalled at merge).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from redis import Redis

from eventbus.cli import cli, registry
from eventbus.keys import Keys

pytestmark = pytest.mark.integration

KEY = base64.b64encode(b"c" * 32).decode()
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(autouse=True)
def subscriptions_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    found = dict(registry._entry_points())
    found.setdefault(
        "subscriptions",
        EntryPoint("subscriptions", "consumers.cli:COMMANDS", registry.ENTRY_POINT_GROUP),
    )
    monkeypatch.setattr(registry, "_entry_points", lambda: found)


@pytest.fixture
def config(tmp_path: Path, redis_url: str, prefix: str) -> Path:
    path = tmp_path / "eventbus.yaml"
    data = {
        "broker": {"redis_url": redis_url, "prefix": prefix},
        "security": {"secret_key": KEY},
        "channels": [{"name": "console", "type": "console"}],
        "subscriptions": [
            {"name": "yaml-all", "team": "*", "events": ["*"], "channels": ["console"]}
        ],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def invoke(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


@pytest.fixture
def sync_redis(redis_url: str, prefix: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(match=f"{{{prefix}}}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_channels_add_update_remove_through_the_store(
    config: Path, sync_redis: Redis, prefix: str
) -> None:
    redis = sync_redis
    added = invoke(
        config, "channels", "add", "t1-hook", "--team", "team-1", "--type", "webhook",
        "--url", "https://hooks.example.com/t1", "--set", f"secret={SECRET}",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert SECRET not in added.output and '"secret": "***"' in added.output
    raw = redis.hget(Keys(prefix).console("channel"), "t1-hook")
    assert raw is not None and SECRET.encode() not in raw
    listed = [
        json.loads(line)
        for line in invoke(config, "channels", "list", "--json").stdout.splitlines()
    ]
    assert [(row["name"], row["source"]) for row in listed] == [
        ("console", "config"),
        ("t1-hook", "api"),
    ], "channels list shows the console's channels beside the YAML's"
    assert SECRET not in json.dumps(listed)
    updated = invoke(config, "channels", "update", "t1-hook", "--set", "timeout=4")
    assert updated.exit_code == 0 and '"timeout": 4' in updated.output, updated.output
    audit = redis.xrange(Keys(prefix).console_audit)
    assert audit[-1][1][b"actor"].startswith(b"cli:")
    assert invoke(config, "channels", "remove", "t1-hook").exit_code == 0
    missing = invoke(config, "channels", "remove", "t1-hook")
    assert missing.exit_code == 1 and "no channel named 't1-hook'" in missing.output


def test_channels_add_lists_every_problem(config: Path) -> None:
    bad = invoke(
        config, "channels", "add", "x", "--team", "t", "--type", "webhook", "--set", "colour=red"
    )
    assert bad.exit_code == 2
    assert "colour" in bad.output and "url" in bad.output, bad.output
    yaml_one = invoke(config, "channels", "remove", "console")
    assert yaml_one.exit_code == 1 and "YAML" in yaml_one.output


def test_subscriptions_list_add_update_remove(config: Path) -> None:
    added = invoke(
        config, "subscriptions", "add", "t1-errors", "--team", "team-1",
        "--events", "capsule.*", "--channel", "console", "--set", "outcomes=[error]",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    rows = [
        json.loads(line)
        for line in invoke(config, "subscriptions", "list", "--json").stdout.splitlines()
    ]
    assert [(r["name"], r["source"]) for r in rows] == [
        ("yaml-all", "config"),
        ("t1-errors", "api"),
    ]
    assert rows[1]["outcomes"] == ["error"] and rows[1]["team"] == "team-1"
    other = invoke(config, "subscriptions", "list", "--team", "team-2", "--json").stdout
    assert "t1-errors" not in other
    bad = invoke(config, "subscriptions", "update", "t1-errors", "--set", "min_severity=loud")
    assert bad.exit_code == 2 and "min_severity" in bad.output
    good = invoke(config, "subscriptions", "update", "t1-errors", "--set", "min_severity=warning")
    assert good.exit_code == 0 and '"min_severity": "warning"' in good.output
    table = invoke(config, "subscriptions", "list").output
    assert "t1-errors" in table and "api" in table
    assert invoke(config, "subscriptions", "remove", "t1-errors").exit_code == 0
    assert "t1-errors" not in invoke(config, "subscriptions", "list").output
