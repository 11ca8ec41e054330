"""Default rendering and its per-subscription templates."""

from __future__ import annotations

import pytest

from consumers.rendering import TEST_PREFIX, default_title, render
from consumers.templates import TemplateRenderError
from eventbus.settings import SubscriptionSpec

from .channels.support import make_event


def sub(**templates: str) -> SubscriptionSpec:
    return SubscriptionSpec(name="ops", team="team-1", events=["*"], channels=["c"], **templates)


@pytest.mark.parametrize(
    ("outcome", "title"),
    [
        pytest.param("error", "capsule.create failed: capsule c1 (team-1)", id="error"),
        pytest.param("success", "capsule.create succeeded: capsule c1 (team-1)", id="success"),
        pytest.param(None, "capsule.create: capsule c1 (team-1)", id="no-outcome"),
    ],
)
def test_default_title(outcome: str | None, title: str) -> None:
    assert default_title(make_event(outcome)) == title


def test_default_body() -> None:
    message = render(make_event(), None, "d1")
    assert message.body.splitlines() == [
        "Outcome: error",
        "Severity: error",
        "Resource: capsule c1",
        "Actor: user alice",
        "Team: team-1",
        "Error: quota exceeded",
        "region: eu",
        "Time: 2024-05-01T12:00:00.000Z",
    ]
    assert message.link is None and message.subscription == ""


@pytest.mark.parametrize(
    ("outcome", "severity", "shown"),
    [
        pytest.param("success", None, "info", id="absent-success-is-info"),
        pytest.param(None, None, "info", id="absent-no-outcome-is-info"),
        pytest.param("error", None, "error", id="absent-error-is-error"),
        pytest.param("error", "critical", "critical", id="set-wins-over-outcome"),
        pytest.param("success", "warning", "warning", id="set-on-success"),
        pytest.param(None, "debug", "debug", id="debug"),
    ],
)
def test_default_body_shows_the_effective_severity(
    outcome: str | None, severity: str | None, shown: str
) -> None:
    extra = {"severity": severity} if severity else {}
    lines = render(make_event(outcome, **extra), None, "d1").body.splitlines()
    assert lines[:2] == [f"Outcome: {outcome or 'none'}", f"Severity: {shown}"]


def test_templates_see_the_effective_severity() -> None:
    spec = sub(title_template="{{ severity | upper }}: {{ default_title }}")
    assert render(make_event(), spec, "d1").title.startswith("ERROR: capsule.create failed")
    critical = make_event(severity="critical")
    assert render(critical, spec, "d1").title.startswith("CRITICAL: ")


def test_link_template_adds_a_link_line() -> None:
    message = render(make_event(), sub(link_template="https://ops.example/{{ resource.id }}"), "d1")
    assert message.link == "https://ops.example/c1"
    assert message.body.splitlines()[-1] == "Link: https://ops.example/c1"
    assert message.title == "capsule.create failed: capsule c1 (team-1)"


def test_title_and_body_templates_and_defaults_available() -> None:
    spec = sub(
        title_template="[{{ team }}] {{ default_title }}",
        body_template="{{ default_body }}\nby {{ actor.name }} ({{ delivery_id }})",
    )
    message = render(make_event(), spec, "d9")
    assert message.title == "[team-1] capsule.create failed: capsule c1 (team-1)"
    assert message.body.endswith("by alice (d9)") and "Outcome: error" in message.body
    assert message.subscription == "ops" and message.delivery_id == "d9"


def test_test_messages_are_marked() -> None:
    message = render(make_event(), None, "d1", test=True)
    assert message.test and message.title.startswith(TEST_PREFIX)


def test_template_error_is_permanent_delivery_error() -> None:
    with pytest.raises(TemplateRenderError, match=r"subscription 'ops' body_template"):
        render(make_event(), sub(body_template="{{ missing }}"), "d1")


def test_default_text_is_made_only_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import consumers.rendering as rendering

    calls: list[str] = []
    real = rendering.default_lines

    def counting(*args: object, **kwargs: object) -> list[str]:
        calls.append("lines")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rendering, "default_lines", counting)
    message = render(make_event(), sub(), "d1")
    assert calls == [], "a channel that sends the envelope pays for no text"
    assert message.title == "capsule.create failed: capsule c1 (team-1)"
    assert message.text.splitlines()[1] == "Outcome: error"
    assert calls == ["lines"], "rendered once, on first use"


def test_message_needs_text_or_a_renderer() -> None:
    from consumers.channels.base import Message

    with pytest.raises(TypeError, match="title and a body"):
        Message(title="t", event=make_event(), delivery_id="d1")
