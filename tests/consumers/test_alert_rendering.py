"""The default text of an alert's notifications, and what templates see of the alert."""

from __future__ import annotations

import pytest

from consumers.rendering import TEST_PREFIX, open_for_text, render
from eventbus.settings import SubscriptionSpec

from .channels.support import alert_message, make_alert, make_event

SUMMARY = "capsule.create failed: capsule c1 (team-1)"


def sub(**templates: str) -> SubscriptionSpec:
    return SubscriptionSpec(name="ops", team="team-1", events=["*"], channels=["c"], **templates)


@pytest.mark.parametrize(
    ("transition", "extra", "title", "lead"),
    [
        pytest.param("raised", {}, SUMMARY, "Outcome: error", id="raised"),
        pytest.param(
            "resolved",
            {},
            f"RESOLVED: {SUMMARY}",
            "Open for 3h5m; 41 events folded in",
            id="resolved",
        ),
        pytest.param(
            "acknowledged",
            {},
            f"ACKNOWLEDGED by ana: {SUMMARY}",
            "Acknowledged by ana after 3h; 41 events so far",
            id="acknowledged",
        ),
        pytest.param(
            "acknowledged",
            {"acknowledged_by": None},
            f"ACKNOWLEDGED: {SUMMARY}",
            "Acknowledged after 3h; 41 events so far",
            id="acknowledged-by-nobody-named",
        ),
        pytest.param(
            "repeat",
            {},
            f"STILL FIRING (3h, 41 events): {SUMMARY}",
            "Firing for 3h; 41 events so far, not acknowledged",
            id="repeat",
        ),
    ],
)
def test_title_and_first_line(
    transition: str, extra: dict[str, object], title: str, lead: str
) -> None:
    message = alert_message(transition, **extra)
    assert message.title == title
    assert message.body.splitlines()[0] == lead


def test_raise_is_the_event_notification_with_the_alert_key() -> None:
    plain = render(make_event(), None, "d1")
    raised = alert_message("raised")
    lines = raised.body.splitlines()
    assert lines.pop(2) == "Alert: backup-failed:h1"
    assert (raised.title, lines) == (plain.title, plain.body.splitlines())
    touched = alert_message("touched", count=5)
    assert "Alert: backup-failed:h1 (5 events)" in touched.body.splitlines()


def test_resolve_body_names_the_alert_its_times_and_the_reason() -> None:
    body = alert_message("resolved", reason="auto-resolved: not seen for 30m").body
    assert body.splitlines() == [
        "Open for 3h5m; 41 events folded in",
        "Reason: auto-resolved: not seen for 30m",
        "Alert: backup-failed:h1",
        "Severity: error (the highest while firing)",
        "Resource: capsule c1",
        "Team: team-1",
        "First seen: 2024-05-01T09:00:00Z",
        "Last seen: 2024-05-01T12:00:00Z",
        "Resolved: 2024-05-01T12:05:00Z",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0.2, "0s", id="under-a-second"),
        pytest.param(45, "45s", id="seconds"),
        pytest.param(12 * 60 + 5, "12m5s", id="minutes"),
        pytest.param(3 * 3600 + 29, "3h", id="hours-to-the-minute"),
        pytest.param(2 * 3600 + 5 * 60 + 40, "2h6m", id="hours-and-minutes"),
        pytest.param(86400 + 4 * 3600 + 20 * 60, "1d4h", id="days-to-the-hour"),
    ],
)
def test_open_for_text(seconds: float, text: str) -> None:
    assert open_for_text(seconds) == text


def test_alert_set_after_render_is_read_when_the_text_is_made() -> None:
    message = render(make_event("success"), None, "d1", test=True)
    message.alert = make_alert("resolved")
    assert message.title == f"{TEST_PREFIX}RESOLVED: {SUMMARY}"


def test_templates_see_the_alert() -> None:
    spec = sub(
        title_template="[{{ team }}] {{ default_title }}",
        body_template="{{ alert.transition }} after {{ alert.count }} events"
        " ({{ alert.dedup_key }})",
    )
    raised = render(make_event(), spec, "d1", alert=make_alert("raised"))
    assert raised.title == f"[team-1] {SUMMARY}"
    assert raised.body == "raised after 1 events (team-1:backup-failed:h1)"
    resolved = render(make_event("success"), spec, "d1", alert=make_alert("resolved"))
    # a notice names the alert by the summary it was raised with
    assert resolved.title == f"RESOLVED: {SUMMARY}"
    assert resolved.body == "resolved after 41 events (team-1:backup-failed:h1)"
    assert resolved.alert is not None and resolved.alert.transition == "resolved"


def test_templates_default_body_is_the_alert_text() -> None:
    spec = sub(body_template="{{ default_body }}")
    message = render(make_event("success"), spec, "d1", alert=make_alert("resolved"))
    assert message.body.splitlines()[0] == "Open for 3h5m; 41 events folded in"
