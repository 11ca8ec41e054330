"""Publishing alert events: ``alert_event``, the publisher helpers and ``publish --alert-key``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
import redis.asyncio as aioredis

from eventbus.envelope import AlertAction, Resource, decode
from eventbus.errors import EnvelopeError
from eventbus.keys import Keys
from eventbus.settings import Settings
from publishers import Publisher, SyncPublisher
from publishers.alerts import alert_event
from tests.eventbus.cli_support import CLOSED, run

BACKUP = {"event": "backup.run", "resource": "host:h1"}


@pytest.mark.parametrize(
    ("action", "outcome", "kw"),
    [
        pytest.param("trigger", "error", {"error": "disk full"}, id="trigger-is-a-failure"),
        pytest.param("resolve", "success", {"comment": "fixed"}, id="resolve-is-a-success"),
        pytest.param("acknowledge", None, {"comment": "on it"}, id="acknowledge-has-no-outcome"),
    ],
)
def test_alert_event_shape(action: str, outcome: str | None, kw: dict[str, str]) -> None:
    ev = alert_event(action, "ops", "backup-failed:h1", severity="WARNING", **BACKUP, **kw)
    data = json.loads(ev.to_json())
    assert data["alert"] == {"key": "backup-failed:h1", "action": action}
    assert ev.alert_action is AlertAction(action)
    assert data.get("outcome") == outcome
    assert (data["team_id"], data["event"], data["resource"]) == (
        "ops",
        "backup.run",
        {"id": "h1", "type": "host"},
    )
    assert data["severity"] == "warning"
    assert data.get("error") == kw.get("error")
    assert data["metadata"].get("comment") == kw.get("comment")


def test_alert_event_takes_a_resource_object_or_mapping() -> None:
    one = alert_event(
        "trigger", "ops", "k", event="backup.run", resource=Resource(id="h1", type="host")
    )
    two = alert_event(
        "trigger", "ops", "k", event="backup.run", resource={"type": "host", "id": "h1"}
    )
    assert one.resource == two.resource == Resource(id="h1", type="host")


@pytest.mark.parametrize(
    ("args", "kw", "needle"),
    [
        pytest.param(
            ("trigger", "ops", "k"),
            {"resource": "h1"},
            "resource 'h1' is not TYPE:ID",
            id="resource",
        ),
        pytest.param(("close", "ops", "k"), {}, "alert action 'close' is not one of", id="action"),
        pytest.param(
            ("resolve", "ops", "k"), {"error": "x"}, "error is only for trigger_alert", id="error"
        ),
        pytest.param(("trigger", "ops", "k" * 201), {}, "alert.key", id="key-too-long"),
        pytest.param(("trigger", "ops", "k"), {"severity": "loud"}, "severity", id="severity"),
    ],
)
def test_alert_event_errors_name_the_value(
    args: tuple[str, str, str], kw: dict[str, Any], needle: str
) -> None:
    fields = {**BACKUP, **kw}
    with pytest.raises(EnvelopeError, match=needle.replace("(", r"\(")):
        alert_event(*args, **fields)


async def _payloads(redis: aioredis.Redis, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(f[b"payload"]) for _, f in await redis.xrange(Keys(prefix).events)]


@pytest.mark.integration
async def test_publisher_helpers_publish_the_alert_life(
    make_settings: Callable[..., Settings], redis: aioredis.Redis, prefix: str
) -> None:
    async with Publisher(make_settings()) as bus:
        first = await bus.trigger_alert("ops", "backup-failed:h1", error="disk full", **BACKUP)
        await bus.acknowledge_alert("ops", "backup-failed:h1", by="ana", comment="on it", **BACKUP)
        await bus.resolve_alert("ops", "backup-failed:h1", **BACKUP)
    trigger, ack, resolve = await _payloads(redis, prefix)
    [(entry_id, _)] = await redis.xrange(Keys(prefix).events, count=1)
    assert entry_id.decode() == first
    assert (trigger["outcome"], trigger["error"], trigger["alert"]["action"]) == (
        "error",
        "disk full",
        "trigger",
    )
    assert ack["actor"] == {"type": "user", "id": "ana", "name": "ana"}
    assert (ack["alert"]["action"], ack["metadata"]) == ("acknowledge", {"comment": "on it"})
    assert (resolve["outcome"], resolve["alert"]) == (
        "success",
        {"key": "backup-failed:h1", "action": "resolve"},
    )


@pytest.mark.integration
async def test_sync_publisher_helpers(
    make_settings: Callable[..., Settings], redis: aioredis.Redis, prefix: str
) -> None:
    def publish() -> None:
        with SyncPublisher(make_settings()) as bus:
            bus.trigger_alert("ops", "k1", severity="critical", **BACKUP)
            bus.acknowledge_alert("ops", "k1", **BACKUP)
            bus.resolve_alert("ops", "k1", comment="done", **BACKUP)

    await asyncio.to_thread(publish)
    payloads = await _payloads(redis, prefix)
    assert [p["alert"]["action"] for p in payloads] == ["trigger", "acknowledge", "resolve"]
    assert payloads[0]["severity"] == "critical"
    assert payloads[2]["metadata"] == {"comment": "done"}


# --- eventbus publish --alert-key ----------------------------------------------------


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[sync_redis.Redis]:
    client = sync_redis.Redis.from_url(redis_url)
    yield client
    keys = [*client.scan_iter(match=f"{prefix}*"), *client.scan_iter(match=f"{{{prefix}}}*")]
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("flags", "alert", "action"),
    [
        pytest.param(
            ["--outcome", "error"], {"key": "backup-failed:h1"}, "trigger", id="follows-error"
        ),
        pytest.param(
            ["--outcome", "success"], {"key": "backup-failed:h1"}, "resolve", id="follows-success"
        ),
        pytest.param(
            ["--alert-action", "ACKNOWLEDGE"],
            {"key": "backup-failed:h1", "action": "acknowledge"},
            "acknowledge",
            id="given",
        ),
    ],
)
def test_publish_alert_flags(
    tmp_path: Path,
    redis_url: str,
    prefix: str,
    client: sync_redis.Redis,
    flags: list[str],
    alert: dict[str, str],
    action: str,
) -> None:
    config = tmp_path / "bus.yaml"
    config.write_text(f"broker:\n  redis_url: {redis_url}\n  prefix: {prefix}\n")
    result = run(
        "--config", str(config), "publish", "--type", "backup.run", "--team", "ops",
        "--resource", "host:h1", "--alert-key", "backup-failed:h1", *flags,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [(_, fields)] = client.xrange(Keys(prefix).events)
    assert json.loads(fields[b"payload"])["alert"] == alert
    assert decode(fields[b"payload"]).alert_action == action


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        pytest.param(
            ["--alert-action", "resolve"], "--alert-action needs --alert-key", id="action-alone"
        ),
        pytest.param(
            ["--alert-key", "k", "--transient"],
            "transient ones are never delivered",
            id="transient",
        ),
        pytest.param(
            ["--alert-key", "k", "--alert-action", "close"],
            "'close' is not one of",
            id="bad-action",
        ),
        pytest.param(["--alert-key", "k" * 201], "alert.key", id="key-too-long"),
    ],
)
def test_publish_alert_usage_errors_exit_2(flags: list[str], needle: str) -> None:
    result = run(
        "publish", "--type", "backup.run", "--team", "ops", "--resource", "host:h1", *flags,
        env={"EVENTBUS_BROKER__REDIS_URL": CLOSED},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert needle in result.output
