"""The alert state machine: every action in every state, and who is notified."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from consumers.alerting import Action, Origin, notice, notifies, step
from consumers.store.alerts import Alert, AlertStatus, Transition
from eventbus.settings import Settings, SubscriptionSpec

T0 = 1_700_000_000.0


def origin(at: float = T0 + 60, severity: str = "error", **extra: str) -> Origin:
    return Origin(
        team_id="team-1",
        key="backup-failed:h1",
        event_id=f"ev-{at}",
        at=at,
        severity=severity,
        summary="backup failed on h1",
        event_type="backup.run",
        by=extra.get("by"),
        reason=extra.get("reason"),
    )


def alert(status: AlertStatus | None) -> Alert | None:
    if status is None:
        return None
    found = Alert(
        id="01ALERT",
        team_id="team-1",
        key="backup-failed:h1",
        status=status,
        severity="warning",
        first_seen=T0,
        last_seen=T0,
        count=3,
        last_event="ev-0",
        summary="backup failed on h1",
        last_notified_at=T0,
    )
    if status is AlertStatus.ACKNOWLEDGED:
        found = replace(found, acknowledged_by="ops", acknowledged_at=T0)
    if status is AlertStatus.RESOLVED:
        found = replace(found, resolved_at=T0)
    return found


NONE, FIRING, ACKED, RESOLVED = (
    None,
    AlertStatus.FIRING,
    AlertStatus.ACKNOWLEDGED,
    AlertStatus.RESOLVED,
)

TABLE = [
    # state, action, transition, status after (None: no alert)
    pytest.param(NONE, Action.TRIGGER, Transition.RAISED, FIRING, id="trigger-none"),
    pytest.param(FIRING, Action.TRIGGER, Transition.TOUCHED, FIRING, id="trigger-firing"),
    pytest.param(ACKED, Action.TRIGGER, Transition.TOUCHED, ACKED, id="trigger-acked"),
    pytest.param(RESOLVED, Action.TRIGGER, Transition.RAISED, FIRING, id="trigger-resolved"),
    pytest.param(NONE, Action.ACKNOWLEDGE, None, None, id="ack-none"),
    pytest.param(FIRING, Action.ACKNOWLEDGE, Transition.ACKNOWLEDGED, ACKED, id="ack-firing"),
    pytest.param(ACKED, Action.ACKNOWLEDGE, None, ACKED, id="ack-acked"),
    pytest.param(RESOLVED, Action.ACKNOWLEDGE, None, RESOLVED, id="ack-resolved"),
    pytest.param(NONE, Action.RESOLVE, None, None, id="resolve-none"),
    pytest.param(FIRING, Action.RESOLVE, Transition.RESOLVED, RESOLVED, id="resolve-firing"),
    pytest.param(ACKED, Action.RESOLVE, Transition.RESOLVED, RESOLVED, id="resolve-acked"),
    pytest.param(RESOLVED, Action.RESOLVE, None, RESOLVED, id="resolve-resolved"),
    pytest.param(NONE, Action.REPEAT, None, None, id="repeat-none"),
    pytest.param(FIRING, Action.REPEAT, Transition.REPEAT, FIRING, id="repeat-firing"),
    pytest.param(ACKED, Action.REPEAT, None, ACKED, id="repeat-acked"),
    pytest.param(RESOLVED, Action.REPEAT, None, RESOLVED, id="repeat-resolved"),
    pytest.param(NONE, Action.AUTO_RESOLVE, None, None, id="auto-none"),
    pytest.param(FIRING, Action.AUTO_RESOLVE, Transition.RESOLVED, RESOLVED, id="auto-firing"),
    pytest.param(ACKED, Action.AUTO_RESOLVE, Transition.RESOLVED, RESOLVED, id="auto-acked"),
    pytest.param(RESOLVED, Action.AUTO_RESOLVE, None, RESOLVED, id="auto-resolved"),
]


@pytest.mark.parametrize(("state", "action", "transition", "after"), TABLE)
def test_every_action_in_every_state(
    state: AlertStatus | None,
    action: Action,
    transition: Transition | None,
    after: AlertStatus | None,
) -> None:
    current = alert(state)
    done = step(current, action, origin(by="ops", reason="fixed"), new_id="01NEW")
    assert done.transition is transition
    assert done.before is state
    assert (done.alert.status if done.alert else None) is after
    if transition is None:
        assert done.alert is current  # nothing changed


def test_a_raise_is_a_new_alert_with_the_events_data() -> None:
    done = step(alert(RESOLVED), Action.TRIGGER, origin(severity="critical"), new_id="01NEW")
    assert done.alert is not None
    assert (done.alert.id, done.alert.count, done.alert.severity) == ("01NEW", 1, "critical")
    assert done.alert.first_seen == done.alert.last_seen == T0 + 60
    assert done.alert.resolved_at is None and done.alert.acknowledged_by is None
    assert done.alert.summary == "backup failed on h1"


def test_a_raise_without_an_id_gets_a_fresh_ulid() -> None:
    first = step(None, Action.TRIGGER, origin()).alert
    second = step(None, Action.TRIGGER, origin()).alert
    assert first is not None and second is not None
    assert len(first.id) == 26 and first.id != second.id


@pytest.mark.parametrize(
    ("had", "new", "kept"),
    [
        pytest.param("warning", "critical", "critical", id="higher-wins"),
        pytest.param("warning", "info", "warning", id="lower-keeps"),
        pytest.param("warning", "warning", "warning", id="same"),
    ],
)
def test_a_touch_counts_and_keeps_the_highest_severity(had: str, new: str, kept: str) -> None:
    current = alert(FIRING)
    assert current is not None
    done = step(replace(current, severity=had), Action.TRIGGER, origin(severity=new))
    assert done.alert is not None
    assert (done.alert.count, done.alert.severity, done.alert.id) == (4, kept, "01ALERT")
    assert done.alert.last_seen == T0 + 60 and done.alert.first_seen == T0


def test_acknowledge_and_resolve_record_who_and_why() -> None:
    acked = step(alert(FIRING), Action.ACKNOWLEDGE, origin(by="alice")).alert
    assert acked is not None
    assert (acked.acknowledged_by, acked.acknowledged_at) == ("alice", T0 + 60)
    closed = step(acked, Action.AUTO_RESOLVE, origin(at=T0 + 1800, reason="auto")).alert
    assert closed is not None
    assert (closed.resolved_at, closed.resolve_reason) == (T0 + 1800, "auto")
    assert closed.open_for == 1800


def test_a_repeat_moves_the_last_notification() -> None:
    done = step(alert(FIRING), Action.REPEAT, origin(at=T0 + 3600))
    assert done.alert is not None and done.alert.last_notified_at == T0 + 3600


def spec(**fields: object) -> SubscriptionSpec:
    return SubscriptionSpec.model_validate(
        {"name": "pager", "team": "team-1", "events": ["*"], "channels": ["hook"], **fields}
    )


NOTIFY = [
    pytest.param({}, {Transition.RAISED, Transition.RESOLVED}, id="default"),
    pytest.param({"send_resolved": False}, {Transition.RAISED}, id="no-resolved"),
    pytest.param(
        {"repeat_interval": "4h"},
        {Transition.RAISED, Transition.RESOLVED, Transition.REPEAT},
        id="repeat-interval-adds-repeat",
    ),
    pytest.param(
        {"notify_on": ["raise", "acknowledge"]},
        {Transition.RAISED, Transition.ACKNOWLEDGED},
        id="listed",
    ),
    pytest.param(
        {"notify_on": ["raise", "resolve", "touch"], "send_resolved": False},
        {Transition.RAISED, Transition.TOUCHED},
        id="send-resolved-wins",
    ),
]


@pytest.mark.parametrize(("fields", "expected"), NOTIFY)
def test_which_transitions_notify(fields: dict[str, object], expected: set[Transition]) -> None:
    subscription = spec(**fields)
    assert {t for t in Transition if notifies(subscription, t)} == expected


def test_a_bad_notify_on_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="notify_on"):
        spec(notify_on=["raised"])


def test_the_notice_carries_what_channels_read() -> None:
    closed = step(alert(FIRING), Action.RESOLVE, origin(at=T0 + 90, reason="fixed")).alert
    assert closed is not None
    shown = notice(closed, Transition.RESOLVED)
    assert (shown.transition, shown.status, shown.count) == ("resolved", "resolved", 3)
    assert shown.dedup_key == "team-1:backup-failed:h1"
    assert (shown.open_for, shown.reason) == (90, "fixed")


def test_the_readme_alert_examples_are_valid_settings() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 2
    merged: dict[str, object] = {}
    for block in blocks:
        merged.update(yaml.safe_load(block))
    merged["channels"] = [{"name": "pager", "type": "console"}]
    settings = Settings.model_validate(merged)
    assert settings.catalog.build().auto_resolve("backup.run") == 1800
    assert settings.alerts.retention == 7 * 86400
    [sub] = settings.subscriptions
    assert sub.repeat_interval == 4 * 3600 and "acknowledge" in sub.alert_notify_on
