"""/v1/alerts and /v1/whoami on a real server: scoped by the token's teams, roles enforced."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.store import AlertStatus, DeliveryStatus
from eventbus.envelope import ActorType, AlertAction
from eventbus.keys import Keys

from ..alert_fixtures import make_alert, save_alert, stream_events
from .conftest import TOKEN_A, TOKEN_ADMIN, TOKEN_B, TOKEN_READ_A, StartServer

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _alerts(redis: aioredis.Redis, keys: Keys) -> None:
    await save_alert(redis, keys, make_alert("team-a", "disk:h2", AlertStatus.RESOLVED))
    await save_alert(redis, keys, make_alert("team-a", "backup-failed:h1", severity="warning"))
    await save_alert(redis, keys, make_alert("team-a", "cert:web", AlertStatus.ACKNOWLEDGED))
    await save_alert(redis, keys, make_alert("team-a", "host-down:h3", severity="critical"))
    await save_alert(redis, keys, make_alert("team-b", "backup-failed:h9"))


async def test_whoami_tells_the_page_its_teams_and_role(start_server: StartServer) -> None:
    app = await start_server()
    mine = await app.client.get("/v1/whoami", headers=bearer(TOKEN_READ_A))
    assert mine.json() == {
        "name": "viewer-a",
        "teams": ["team-a"],
        "role": "read",
        "may_operate": False,
    }
    admin = (await app.client.get("/v1/whoami", headers=bearer(TOKEN_ADMIN))).json()
    assert (admin["teams"], admin["role"], admin["may_operate"]) == (["*"], "operate", True)
    assert (await app.client.get("/v1/whoami")).status_code == 401


async def test_list_is_firing_first_and_only_the_tokens_teams(
    start_server: StartServer, redis: aioredis.Redis
) -> None:
    app = await start_server()
    await _alerts(redis, Keys(app.settings.broker.prefix))
    listed = await app.client.get("/v1/alerts", headers=bearer(TOKEN_A))
    assert listed.status_code == 200
    shown = [(a["status"], a["key"]) for a in listed.json()["alerts"]]
    assert shown == [
        ("firing", "host-down:h3"),  # the most severe first
        ("firing", "backup-failed:h1"),
        ("acknowledged", "cert:web"),
        ("resolved", "disk:h2"),
    ]
    assert listed.json()["may_operate"] is True
    firing = await app.client.get(
        "/v1/alerts", params={"status": "firing"}, headers=bearer(TOKEN_ADMIN)
    )
    assert sorted(a["team_id"] for a in firing.json()["alerts"]) == ["team-a", "team-a", "team-b"]
    foreign = await app.client.get("/v1/alerts", params={"team": "team-a"}, headers=bearer(TOKEN_B))
    assert foreign.status_code == 403
    bad = await app.client.get("/v1/alerts", params={"status": "open"}, headers=bearer(TOKEN_A))
    assert bad.status_code == 400 and "firing, acknowledged, resolved" in bad.json()["error"]


async def test_one_alert_with_its_events_and_notifications(
    start_server: StartServer, redis: aioredis.Redis
) -> None:
    app = await start_server()
    alert = make_alert("team-a", "backup/failed:h1")  # a slash in the key
    await save_alert(
        redis,
        Keys(app.settings.broker.prefix),
        alert,
        events=["ev_raise", "ev_touch"],
        notified={"ev_raise": DeliveryStatus.DELIVERED, "ev_touch": DeliveryStatus.SUPPRESSED},
    )
    one = await app.client.get("/v1/alerts/backup%2Ffailed:h1", headers=bearer(TOKEN_A))
    assert one.status_code == 200, one.text
    data = one.json()
    assert data["alert"]["id"] == alert.id and data["events"] == ["ev_touch", "ev_raise"]
    assert {(d["event_id"], d["status"]) for d in data["deliveries"]} == {
        ("ev_raise", "delivered"),
        ("ev_touch", "suppressed"),
    }
    admin = await app.client.get("/v1/alerts/backup%2Ffailed:h1", headers=bearer(TOKEN_ADMIN))
    assert admin.status_code == 400 and "?team=TEAM" in admin.json()["error"]
    named = await app.client.get(
        "/v1/alerts/backup%2Ffailed:h1", params={"team": "team-a"}, headers=bearer(TOKEN_ADMIN)
    )
    assert named.json()["alert"]["id"] == alert.id


async def test_a_foreign_teams_alert_is_not_found_as_a_missing_one(
    start_server: StartServer, redis: aioredis.Redis
) -> None:
    app = await start_server()
    await _alerts(redis, Keys(app.settings.broker.prefix))
    for method, suffix in (("GET", ""), ("POST", "/ack"), ("POST", "/resolve")):
        foreign = await app.client.request(
            method,
            f"/v1/alerts/backup-failed:h9{suffix}",
            params={"team": "team-b"},
            headers=bearer(TOKEN_A),
        )
        missing = await app.client.request(
            method,
            f"/v1/alerts/backup-failed:h8{suffix}",
            params={"team": "team-b"},
            headers=bearer(TOKEN_A),
        )
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json()["error"].replace("h9", "X") == missing.json()["error"].replace(
            "h8", "X"
        ), "the same answer: nothing says it exists"
    assert await stream_events(redis, Keys(app.settings.broker.prefix)) == []


async def test_ack_publishes_the_action_as_the_cli_does(
    start_server: StartServer, redis: aioredis.Redis
) -> None:
    app = await start_server()
    keys = Keys(app.settings.broker.prefix)
    alert = make_alert("team-a", "backup-failed:h1")
    await save_alert(redis, keys, alert)
    done = await app.client.post(
        "/v1/alerts/backup-failed:h1/ack",
        json={"by": "alice", "comment": "on it"},
        headers=bearer(TOKEN_A),
    )
    assert done.status_code == 202, done.text
    [event] = await stream_events(redis, keys)
    assert done.json()["event_id"] == event.id and done.json()["action"] == "acknowledge"
    assert (event.event, event.team_id, event.resource.id) == ("backup.run", "team-a", "h1")
    assert event.alert_action is AlertAction.ACKNOWLEDGE
    assert (event.actor.type, event.actor.id, event.actor.name) == (
        ActorType.API_KEY,
        "team-a",
        "alice",
    )
    assert event.metadata == {"alert_id": alert.id, "via": "http", "comment": "on it"}

    resolved = await app.client.post(
        "/v1/alerts/backup-failed:h1/resolve",
        params={"team": "team-a"},
        headers=bearer(TOKEN_ADMIN),
    )
    assert resolved.status_code == 202, resolved.text
    events = await stream_events(redis, keys)
    assert [e.alert_action for e in events] == [AlertAction.ACKNOWLEDGE, AlertAction.RESOLVE]
    assert events[1].actor.name == "ops", "the token's name by default"


async def test_a_read_token_may_look_but_not_ack_or_resolve(
    start_server: StartServer, redis: aioredis.Redis
) -> None:
    app = await start_server()
    keys = Keys(app.settings.broker.prefix)
    await save_alert(redis, keys, make_alert("team-a", "backup-failed:h1"))
    listed = await app.client.get("/v1/alerts", headers=bearer(TOKEN_READ_A))
    assert [a["key"] for a in listed.json()["alerts"]] == ["backup-failed:h1"]
    assert listed.json()["may_operate"] is False
    for verb, action in (("ack", "acknowledge"), ("resolve", "resolve")):
        refused = await app.client.post(
            f"/v1/alerts/backup-failed:h1/{verb}", headers=bearer(TOKEN_READ_A)
        )
        assert refused.status_code == 403
        assert refused.json()["error"] == (
            f"token 'viewer-a' has role 'read': {action} an alert needs role 'operate'"
        )
    assert await stream_events(redis, keys) == []


@pytest.mark.parametrize(
    ("status", "verb", "code", "body", "message"),
    [
        (AlertStatus.RESOLVED, "ack", 409, None, "is resolved already"),
        (AlertStatus.RESOLVED, "resolve", 409, None, "is resolved already"),
        (AlertStatus.ACKNOWLEDGED, "ack", 409, None, "is acknowledged already (by bob)"),
        (AlertStatus.FIRING, "ack", 422, {"comment": "x" * 1001}, "at most 1000"),
        (AlertStatus.FIRING, "ack", 422, {"who": "alice"}, "unknown fields ['who']"),
        (AlertStatus.FIRING, "ack", 422, {"by": 3}, "by and comment must be strings"),
        (AlertStatus.FIRING, "ack", 400, [1], "must be a JSON object"),
    ],
)
async def test_refusals(
    start_server: StartServer,
    redis: aioredis.Redis,
    status: AlertStatus,
    verb: str,
    code: int,
    body: Any,
    message: str,
) -> None:
    app = await start_server()
    keys = Keys(app.settings.broker.prefix)
    await save_alert(redis, keys, make_alert("team-a", "backup-failed:h1", status))
    done = await app.client.post(
        f"/v1/alerts/backup-failed:h1/{verb}", json=body, headers=bearer(TOKEN_A)
    )
    assert done.status_code == code, done.text
    assert message in done.json()["error"]
    assert await stream_events(redis, keys) == []
