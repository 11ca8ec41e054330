"""Templates run inside a budget: whatever they do fails only their own delivery, quickly."""

from __future__ import annotations

import time

import pytest

from consumers.rendering import render
from consumers.sandbox import MAX_SECONDS
from consumers.templates import TemplateRenderError, template_problems
from eventbus.settings import SubscriptionSpec

from .channels.support import make_event


def sub(**templates: str) -> SubscriptionSpec:
    return SubscriptionSpec(name="ops", team="team-1", events=["*"], channels=["c"], **templates)


# Each of these blocked a worker for seconds, ate gigabytes, or escaped as an
# exception type the renderer did not catch (issue 12, items 3 and 4).
HOSTILE = [
    pytest.param(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        # the step budget, or the clock first on a loaded machine: both stop it
        ("budget of 100000 steps", "ran longer than"),
        id="nested-ranges",
    ),
    pytest.param("{{ 10**(10**7) }}", "'**' would be too large", id="huge-power"),
    pytest.param("{{ ('x' * 10**10)|length }}", "'*' would be too large", id="huge-repeat"),
    pytest.param("{{ [0] * 10**9 }}", "'*' would be too large", id="huge-list"),
    pytest.param(
        "{% set ns = namespace(s='xx') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
        "would be too large",
        id="doubling-namespace",
    ),
    pytest.param(
        "{% set ns = namespace(s='xx') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        "namespace value 's'",
        id="doubling-concat",
    ),
    pytest.param("{{ 'x'|center(10**9) }}", "larger than 100000", id="huge-filter-width"),
    pytest.param("{{ '%999999999s' % 'x' }}", "'%' would be too large", id="huge-percent-width"),
    pytest.param("{{ '{:>999999999}'.format('x') }}", "format width", id="huge-format-width"),
    pytest.param(
        "{% macro d(s, n) %}{{ d(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ d('x', 40) }}",
        "holds more than",
        id="doubling-macro",
    ),
    pytest.param(
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError", id="recursion"
    ),
]


@pytest.mark.parametrize(("source", "needle"), HOSTILE)
def test_hostile_template_fails_its_delivery_quickly(
    source: str, needle: str | tuple[str, ...]
) -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateRenderError) as info:
        render(make_event(), sub(body_template=source), "d1")
    elapsed = time.perf_counter() - started
    needles = (needle,) if isinstance(needle, str) else needle
    assert any(text in str(info.value) for text in needles), str(info.value)
    assert info.value.subscription == "ops" and info.value.field == "body_template"
    # Far from the seconds these took unbudgeted, even on a machine busy with
    # other work (the budget is the guarantee; this only catches its absence).
    assert elapsed < MAX_SECONDS * 30


def test_any_exception_type_is_contained() -> None:
    # Mutating a dict while iterating it raises RuntimeError, which escaped
    # the renderer's list of caught types before.
    source = "{% set d = {'a': 1} %}{% for k in d %}{{ d.update({k ~ 'x': 1}) }}{% endfor %}"
    with pytest.raises(TemplateRenderError, match="RuntimeError"):
        render(make_event(), sub(body_template=source), "d1")


def test_ordinary_templates_still_render() -> None:
    source = (
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ 'ab' * 3 }} {{ 2 ** 10 }} "
        "{{ range(5)|length }} {{ '%05d' % 42 }} {{ '{:>4}'.format('x') }}"
    )
    message = render(make_event(), sub(body_template=source), "d1")
    assert message.body == "012 ababab 1024 5 00042    x"


def test_config_check_rejects_provably_unbounded_loops() -> None:
    nested = "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}"
    problems = list(
        template_problems([sub(body_template="{{ type }}"), sub(title_template=nested)])
    )
    assert [index for index, _, _ in problems] == [1]
    assert "1,000,000 times" in problems[0][1] and "title_template" in problems[0][1]
