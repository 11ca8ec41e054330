"""``eventbus silence add | list | expire`` against the real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from click.testing import CliRunner

from consumers.store import SilenceStore
from eventbus.cli import cli
from eventbus.keys import Keys

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path: Path, redis_url: str, prefix: str) -> Path:
    path = tmp_path / "eventbus.yaml"
    path.write_text(yaml.safe_dump({"broker": {"redis_url": redis_url, "prefix": prefix}}))
    return path


def invoke(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), "silence", *args])


def add(config: Path, team: str = "team-1", *extra: str) -> Any:
    return invoke(
        config,
        "add",
        "--team",
        team,
        "--match",
        "event=host.*",
        "--match",
        "metadata.region=eu-west",
        "--for",
        "2h",
        "--comment",
        "maintenance",
        *extra,
    )


async def test_add_prints_the_id_and_stores_it(
    config: Path, redis: aioredis.Redis, prefix: str
) -> None:
    done = await asyncio.to_thread(add, config, "team-1", "--by", "alice")
    assert done.exit_code == 0, done.output
    silence_id = done.stdout.strip()
    assert len(silence_id) == 26
    assert "until" in done.stderr
    stored = await SilenceStore(redis, Keys(prefix)).get(silence_id, time.time())
    assert stored is not None
    assert stored.team == "team-1" and stored.created_by == "alice"
    assert stored.matchers == ("event=host.*", "metadata.region=eu-west")
    assert 7199 < stored.ends_at - stored.created_at <= 7200


def test_list_and_expire(config: Path) -> None:
    one = add(config, "team-1").stdout.strip()
    two = add(config, "team-2").stdout.strip()

    table = invoke(config, "list")
    assert table.exit_code == 0
    assert one in table.output and two in table.output
    assert "event=host.* metadata.region=eu-west" in table.output
    rows = [
        json.loads(line)
        for line in invoke(config, "list", "--team", "team-2", "--json").stdout.splitlines()
    ]
    assert [r["id"] for r in rows] == [two]
    assert rows[0]["matchers"] == ["event=host.*", "metadata.region=eu-west"]

    ended = invoke(config, "expire", one)
    assert ended.exit_code == 0 and f"expired {one}" in ended.output
    assert one not in invoke(config, "list").output
    again = invoke(config, "expire", one)
    assert again.exit_code == 1 and "no silence in force" in again.stderr

    everything = invoke(config, "expire", "--all", "--team", "team-2")
    assert everything.exit_code == 0 and two in everything.output
    assert "(none)" in invoke(config, "list").output


def test_bad_silence_exits_2_with_every_problem(config: Path) -> None:
    done = invoke(
        config,
        "add",
        "--team",
        "team-1",
        "--match",
        "evnt=x",
        "--match",
        "error=~(",
        "--for",
        "2h",
        "--comment",
        "x",
    )
    assert done.exit_code == 2
    assert "matcher 'evnt=x'" in done.stderr and "did you mean 'event'" in done.stderr
    assert "matcher 'error=~('" in done.stderr
    bad_duration = invoke(
        config, "add", "--team", "t", "--match", "event=x", "--for", "soon", "--comment", "x"
    )
    assert bad_duration.exit_code == 2 and "is not a duration" in bad_duration.stderr
    nothing = invoke(config, "expire")
    assert nothing.exit_code == 2 and "--all" in nothing.stderr
