"""``eventbus alerts list | show | ack | resolve`` against the real Redis."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from click.testing import CliRunner

from consumers.cli import COMMANDS
from consumers.cli.alerts import age, command
from consumers.store import AlertStatus, DeliveryStatus
from eventbus.cli import Context
from eventbus.envelope import ActorType, AlertAction, Severity
from eventbus.keys import Keys

from ..alert_fixtures import make_alert, save_alert, stream_events

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path: Path, redis_url: str, prefix: str) -> Path:
    path = tmp_path / "eventbus.yaml"
    path.write_text(yaml.safe_dump({"broker": {"redis_url": redis_url, "prefix": prefix}}))
    return path


def invoke(config: Path, *args: str) -> Any:
    # The group itself, not `eventbus.cli.cli`: the entry point that registers
    # `alerts` is seen only once the package is reinstalled.
    return CliRunner().invoke(command, list(args), obj=Context(config_path=str(config)))


async def _alerts(redis: aioredis.Redis, prefix: str) -> None:
    keys = Keys(prefix)
    await save_alert(redis, keys, make_alert("team-a", "disk-full:h2", AlertStatus.RESOLVED))
    await save_alert(
        redis, keys, make_alert("team-a", "backup-failed:h1", severity="critical", count=50)
    )
    await save_alert(redis, keys, make_alert("team-a", "cert:web", AlertStatus.ACKNOWLEDGED))
    await save_alert(redis, keys, make_alert("team-b", "backup-failed:h9"))


def test_alerts_is_a_registered_command() -> None:
    assert COMMANDS["alerts"].module == "consumers.cli.alerts"
    text = Path(__file__).resolve().parents[3].joinpath("pyproject.toml").read_text()
    assert 'alerts = "consumers.cli:COMMANDS"' in text


def test_age_has_at_most_two_units() -> None:
    assert [age(45), age(3 * 3600 + 12 * 60 + 5), age(2 * 86400 + 4 * 3600 + 60)] == [
        "45s",
        "3h12m",
        "2d4h",
    ]


async def test_list_puts_firing_first_with_age_count_and_severity(
    config: Path, redis: aioredis.Redis, prefix: str
) -> None:
    await _alerts(redis, prefix)
    done = await asyncio.to_thread(invoke, config, "list", "--team", "team-a")
    assert done.exit_code == 0, done.output
    header, *rows = done.stdout.splitlines()
    assert header.split()[:4] == ["STATUS", "AGE", "COUNT", "SEVERITY"]
    assert [row.split()[0] for row in rows] == ["firing", "acknowledged", "resolved"]
    assert rows[0].split()[1:6] == ["3h2m", "50", "critical", "team-a", "backup-failed:h1"]
    assert rows[0].endswith("backup failed on h1")
    assert "team-b" not in done.stdout

    firing = await asyncio.to_thread(invoke, config, "list", "--status", "firing", "--json")
    lines = [json.loads(line) for line in firing.stdout.splitlines()]
    assert sorted((a["team_id"], a["key"]) for a in lines) == [
        ("team-a", "backup-failed:h1"),
        ("team-b", "backup-failed:h9"),
    ]
    assert lines[0]["first_seen"].endswith("Z") and lines[0]["status"] == "firing"


async def test_list_of_nothing_says_so(config: Path) -> None:
    done = await asyncio.to_thread(invoke, config, "list")
    assert done.exit_code == 0 and done.stdout.strip() == "(none)"
    as_json = await asyncio.to_thread(invoke, config, "list", "--json")
    assert as_json.exit_code == 0 and as_json.stdout == ""


async def test_show_lists_events_and_their_notifications(
    config: Path, redis: aioredis.Redis, prefix: str
) -> None:
    alert = make_alert("team-a", "backup-failed:h1", count=3)
    await save_alert(
        redis,
        Keys(prefix),
        alert,
        events=["ev_raise", "ev_touch", "ev_quiet"],
        notified={"ev_raise": DeliveryStatus.DELIVERED, "ev_touch": DeliveryStatus.SUPPRESSED},
    )
    done = await asyncio.to_thread(invoke, config, "show", "backup-failed:h1", "--team", "team-a")
    assert done.exit_code == 0, done.output
    text = done.stdout
    assert f"id {alert.id}" in text and "status:       firing" in text
    assert "backup.run on host:h1" in text
    events = text.split("events (newest first", 1)[1]
    assert events.index("ev_quiet") < events.index("ev_touch") < events.index("ev_raise")
    assert "delivered  oncall (pagerduty) via pager" in events
    assert f"suppressed oncall (pagerduty) via pager: folded into alert {alert.id}" in events
    assert events.split("ev_quiet", 1)[1].split("ev_touch")[0].strip() == (
        "no notifications recorded"
    )

    as_json = await asyncio.to_thread(
        invoke, config, "show", "backup-failed:h1", "--team", "team-a", "--json"
    )
    shown = json.loads(as_json.stdout)
    assert shown["alert"]["id"] == alert.id and shown["events"][0] == "ev_quiet"
    assert sorted(d["status"] for d in shown["deliveries"]) == ["delivered", "suppressed"]


async def test_show_of_another_teams_key_is_not_found(
    config: Path, redis: aioredis.Redis, prefix: str
) -> None:
    await _alerts(redis, prefix)
    done = await asyncio.to_thread(invoke, config, "show", "backup-failed:h9", "--team", "team-a")
    assert done.exit_code == 1
    assert "team 'team-a' has no alert with key 'backup-failed:h9'" in done.stderr


async def test_ack_publishes_an_acknowledge_event_of_the_alerts_kind(
    config: Path, redis: aioredis.Redis, prefix: str
) -> None:
    alert = make_alert("team-a", "backup-failed:h1", severity="critical")
    await save_alert(redis, Keys(prefix), alert)
    done = await asyncio.to_thread(
        invoke, config, "ack", "backup-failed:h1", "--team", "team-a", "--by", "alice"
    )
    assert done.exit_code == 0, done.output
    [event] = await stream_events(redis, Keys(prefix))
    assert done.stdout.strip() == event.id
    assert "published acknowledge of alert 'backup-failed:h1'" in done.stderr
    assert (event.event, event.team_id, event.resource.type, event.resource.id) == (
        "backup.run",
        "team-a",
        "host",
        "h1",
    )
    assert event.alert is not None and event.alert.key == "backup-failed:h1"
    assert event.alert_action is AlertAction.ACKNOWLEDGE
    assert event.actor.type is ActorType.USER and event.actor.name == "alice"
    assert event.severity is Severity.CRITICAL and event.outcome is None
    assert event.metadata == {"alert_id": alert.id, "via": "cli"}


async def test_resolve_publishes_with_the_comment(
    config: Path, redis: aioredis.Redis, prefix: str
) -> None:
    await save_alert(redis, Keys(prefix), make_alert(status=AlertStatus.ACKNOWLEDGED))
    done = await asyncio.to_thread(
        invoke,
        config,
        "resolve",
        "backup-failed:host-1",
        "--team",
        "team-a",
        "--comment",
        "disk replaced",
    )
    assert done.exit_code == 0, done.output
    [event] = await stream_events(redis, Keys(prefix))
    assert event.alert_action is AlertAction.RESOLVE
    assert event.metadata["comment"] == "disk replaced"
    assert event.actor.name and "@" in event.actor.name, "user@host by default"


@pytest.mark.parametrize(
    ("status", "verb", "message"),
    [
        (None, "ack", "team 'team-a' has no alert with key 'backup-failed:host-1'"),
        (None, "resolve", "team 'team-a' has no alert with key 'backup-failed:host-1'"),
        (AlertStatus.RESOLVED, "ack", "is resolved already"),
        (AlertStatus.RESOLVED, "resolve", "is resolved already"),
        (AlertStatus.ACKNOWLEDGED, "ack", "is acknowledged already (by bob)"),
    ],
)
async def test_refused_when_missing_or_closed(
    config: Path,
    redis: aioredis.Redis,
    prefix: str,
    status: AlertStatus | None,
    verb: str,
    message: str,
) -> None:
    if status is not None:
        await save_alert(redis, Keys(prefix), make_alert(status=status))
    done = await asyncio.to_thread(
        invoke, config, verb, "backup-failed:host-1", "--team", "team-a", "--by", "alice"
    )
    assert done.exit_code == 1, done.output
    assert message in done.stderr
    assert await stream_events(redis, Keys(prefix)) == [], "nothing published"


async def test_a_foreign_teams_alert_cannot_be_acknowledged(
    config: Path, redis: aioredis.Redis, prefix: str
) -> None:
    await save_alert(redis, Keys(prefix), make_alert("team-b"))
    done = await asyncio.to_thread(
        invoke, config, "ack", "backup-failed:host-1", "--team", "team-a", "--by", "alice"
    )
    assert done.exit_code == 1 and "has no alert" in done.stderr
    assert await stream_events(redis, Keys(prefix)) == []


async def test_an_old_firing_alert_is_listed_before_newer_resolved_ones(
    config: Path, redis: aioredis.Redis, prefix: str
) -> None:
    keys = Keys(prefix)
    old = make_alert("team-a", "old:firing")
    old.last_seen -= 86400
    await save_alert(redis, keys, old)
    for number in range(5):
        await save_alert(redis, keys, make_alert("team-a", f"new:{number}", AlertStatus.RESOLVED))
    done = await asyncio.to_thread(invoke, config, "list", "--limit", "3", "--json")
    shown = [json.loads(line)["key"] for line in done.stdout.splitlines()]
    assert len(shown) == 3 and shown[0] == "old:firing"
