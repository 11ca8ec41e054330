"""Sandboxed subscription templates: data only, strict names, bounded output, clear errors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.templates import (
    MAX_OUTPUT,
    TemplateRenderError,
    compile_templates,
    render_field,
    template_context,
    template_problems,
)
from eventbus.errors import PermanentDeliveryError
from eventbus.settings import SubscriptionSpec

from .channels.support import make_event


def sub(**templates: str) -> SubscriptionSpec:
    return SubscriptionSpec(name="ops", team="team-1", events=["*"], channels=["c"], **templates)


def render(field: str, source: str) -> str | None:
    compiled = compile_templates(sub(**{field: source}))
    return render_field(compiled, field, template_context(make_event(), delivery_id="d1"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "{{ type }} {{ outcome }} {{ resource.id }}", "capsule.create error c1", id="shortcuts"
        ),
        pytest.param("{{ event.team_id }}/{{ actor.name }}", "team-1/alice", id="envelope-data"),
        pytest.param("{{ metadata.region | upper }}", "EU", id="filters"),
        pytest.param(
            "{% for k, v in metadata.items() %}{{ k }}={{ v }}{% endfor %}", "region=eu", id="loop"
        ),
        pytest.param("<b>{{ error }}</b>", "<b>quota exceeded</b>", id="no-autoescape"),
    ],
)
def test_renders(source: str, expected: str) -> None:
    assert render("title_template", source) == expected


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        pytest.param("{{ nope }}", "'nope' is undefined; available names:", id="unknown-name"),
        pytest.param(
            "{{ metadata.missing.x }}", "has no attribute 'missing'", id="unknown-attribute"
        ),
        pytest.param("{{ event.__class__ }}", "is unsafe", id="dunder-blocked"),
        pytest.param("{{ ''.__class__.__mro__ }}", "unsafe", id="sandbox"),
        pytest.param("{% for i in range(10**9) %}{% endfor %}", "OverflowError", id="huge-range"),
        pytest.param("{{ 1 / 0 }}", "ZeroDivisionError", id="arithmetic"),
        pytest.param(
            "{% for i in range(5000) %}xxxxxxxxxx{% endfor %}",
            "longer than 1024",
            id="output-bound",
        ),
        pytest.param("{{ '' }}", "empty title", id="empty-title"),
    ],
)
def test_errors(source: str, needle: str) -> None:
    with pytest.raises(TemplateRenderError) as info:
        render("title_template", source)
    assert isinstance(info.value, PermanentDeliveryError)
    assert needle in str(info.value)
    assert info.value.subscription == "ops" and info.value.field == "title_template"


def test_syntax_error_at_compile_and_in_config_check() -> None:
    with pytest.raises(TemplateRenderError, match=r"syntax error on line 1"):
        compile_templates(sub(body_template="{% if %}"))
    problems = list(template_problems([sub(), sub(title_template="{{ x")]))
    assert [index for index, _, _ in problems] == [1]


def test_link_must_be_http() -> None:
    assert render("link_template", "https://x.example/{{ resource.id }}") == "https://x.example/c1"
    with pytest.raises(TemplateRenderError, match=r"http\(s\) URL"):
        render("link_template", "javascript:alert(1)")


def test_compiled_once_per_subscription() -> None:
    spec = sub(title_template="{{ type }}")
    assert compile_templates(spec) is compile_templates(spec)


def test_body_limit_is_larger() -> None:
    text = render("body_template", "{% for i in range(1000) %}0123456789{% endfor %}")
    assert text is not None and len(text) == 10000 <= MAX_OUTPUT["body_template"]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_any_template_text_renders_or_fails_cleanly(source: str) -> None:
    with contextlib.suppress(TemplateRenderError):
        render("body_template", source)
