"""The alert model and its store's read side (the worker writes alerts in its commit)."""

from __future__ import annotations

import redis.asyncio as aioredis

from consumers.store import Alert, AlertStatus, AlertStore
from eventbus.envelope import AlertAction, Event
from eventbus.keys import Keys


def alert(team: str = "team-1", key: str = "backup-failed:h1", **changes: object) -> Alert:
    base = Alert(
        id="01J00000000000000000000000",
        team_id=team,
        key=key,
        status=AlertStatus.FIRING,
        severity="error",
        first_seen=100.0,
        last_seen=160.0,
        count=3,
        last_event="01J00000000000000000000003",
        summary="backup failed on h1",
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def test_alert_round_trips_through_json_and_ignores_unknown_fields() -> None:
    original = alert(acknowledged_by="ana", acknowledged_at=150.0)
    assert Alert.from_json(original.to_json()) == original
    assert Alert.from_json(original.to_json()[:-1] + b',"later_field":1}') == original
    assert alert().open_for == 60.0
    assert alert(status=AlertStatus.RESOLVED, resolved_at=400.0).open_for == 300.0


def test_only_resolved_is_closed() -> None:
    assert [status.open for status in AlertStatus] == [True, True, False]


def test_alert_action_follows_the_outcome_unless_given() -> None:
    def ev(**extra: object) -> Event:
        return Event.model_validate(
            {"event": "backup.run", "team_id": "t", "resource": {"id": "h1", "type": "host"}}
            | extra
        )

    assert ev().alert_action is None
    assert ev(alert={"key": "k"}).alert_action is AlertAction.TRIGGER
    assert ev(alert={"key": "k"}, outcome="error").alert_action is AlertAction.TRIGGER
    assert ev(alert={"key": "k"}, outcome="success").alert_action is AlertAction.RESOLVE
    given = ev(alert={"key": "k", "action": "acknowledge"}, outcome="success")
    assert given.alert_action is AlertAction.ACKNOWLEDGE


async def test_store_lists_by_team_and_status(redis: aioredis.Redis, prefix: str) -> None:
    store = AlertStore(redis, Keys(prefix))
    await store.save(alert())
    await store.save(alert(key="disk:h2", status=AlertStatus.RESOLVED, last_seen=170.0))
    await store.save(alert(team="team-2", key="x", last_seen=180.0))
    got = await store.get("team-1", "backup-failed:h1")
    assert got is not None and got.count == 3
    assert await store.get("team-1", "nope") is None
    assert [a.key for a in await store.query()] == ["x", "disk:h2", "backup-failed:h1"]
    assert [a.key for a in await store.query(teams={"team-1"})] == ["disk:h2", "backup-failed:h1"]
    firing = await store.query(teams={"team-1"}, status=AlertStatus.FIRING)
    assert [a.key for a in firing] == ["backup-failed:h1"]
