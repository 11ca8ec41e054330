"""Per-subscription ``title_template`` / ``body_template`` / ``link_template``.

Templates are Jinja2, rendered in a ``SandboxedEnvironment`` against plain
data (dicts, strings, numbers) built from the envelope: no model objects,
no attributes starting with ``_``, nothing outside the event. Unknown names
are errors (``StrictUndefined``), autoescaping is off (the output is plain
text; channels escape for their own format), and output is bounded.

A template that fails raises ``TemplateRenderError``, a
``PermanentDeliveryError`` carrying the template's own error text: the
pipeline records that delivery as failed and moves on. Templates are
compiled once per distinct source (cached).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes

from eventbus.envelope import Event
from eventbus.errors import PermanentDeliveryError
from eventbus.settings import SubscriptionSpec

from .sandbox import MAX_STEPS, Budget, BudgetedSandbox, spending

__all__ = [
    "MAX_OUTPUT",
    "CompiledTemplates",
    "TemplateRenderError",
    "compile_templates",
    "render_field",
    "template_context",
    "template_problems",
]

# characters each field may render to
MAX_OUTPUT = {"title_template": 1024, "body_template": 16384, "link_template": 2048}
FIELDS = tuple(MAX_OUTPUT)


class TemplateRenderError(PermanentDeliveryError):
    """A subscription template could not be compiled or rendered."""

    def __init__(self, subscription: str, field: str, detail: str) -> None:
        self.subscription = subscription
        self.field = field
        self.detail = detail
        super().__init__(f"subscription {subscription!r} {field}: {detail}")


def _environment() -> BudgetedSandbox:
    return BudgetedSandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_ENV = _environment()


@dataclass(frozen=True, slots=True)
class CompiledTemplates:
    subscription: str
    title: jinja2.Template | None = None
    body: jinja2.Template | None = None
    link: jinja2.Template | None = None

    @property
    def empty(self) -> bool:
        return self.title is None and self.body is None and self.link is None


@lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


def _compile_field(subscription: str, field: str, source: str | None) -> jinja2.Template | None:
    if source is None:
        return None
    try:
        return _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateRenderError(
            subscription, field, f"syntax error on line {exc.lineno}: {exc.message}"
        ) from None


@lru_cache(maxsize=1024)
def _compile_all(
    name: str, title: str | None, body: str | None, link: str | None
) -> CompiledTemplates:
    return CompiledTemplates(
        subscription=name,
        title=_compile_field(name, "title_template", title),
        body=_compile_field(name, "body_template", body),
        link=_compile_field(name, "link_template", link),
    )


def compile_templates(subscription: SubscriptionSpec) -> CompiledTemplates:
    """The compiled templates of a subscription (cached); raises ``TemplateRenderError``."""
    return _compile_all(
        subscription.name,
        subscription.title_template,
        subscription.body_template,
        subscription.link_template,
    )


def template_context(
    event: Event,
    *,
    delivery_id: str = "",
    subscription: str = "",
    default_title: str = "",
    default_body: str = "",
    link: str | None = None,
) -> dict[str, Any]:
    """What a template sees: the envelope as plain JSON data, plus a few shortcuts."""
    data = event.model_dump(mode="json")
    return {
        "event": data,
        "id": data["id"],
        "type": data["event"],
        "outcome": event.outcome_name,
        "severity": event.level.value,  # effective: error for a failure without one, else info
        "team": data["team_id"],
        "team_id": data["team_id"],
        "actor": data["actor"],
        "resource": data["resource"],
        "metadata": data["metadata"],
        "error": data.get("error"),
        "timestamp": data["timestamp"],
        "delivery_id": delivery_id,
        "subscription": subscription,
        "default_title": default_title,
        "default_body": default_body,
        "link": link,
    }


def _bounded(chunks: Iterator[str], limit: int) -> str | None:
    """The joined chunks, or ``None`` once they pass ``limit`` characters."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return None
        out.append(chunk)
    return "".join(out)


def render_field(compiled: CompiledTemplates, field: str, context: dict[str, Any]) -> str | None:
    """Render one field (``title_template``...); ``None`` when it has no template."""
    template = {
        "title_template": compiled.title,
        "body_template": compiled.body,
        "link_template": compiled.link,
    }[field]
    if template is None:
        return None
    limit = MAX_OUTPUT[field]
    try:
        with spending(Budget()):
            text = _bounded(template.generate(context), limit)
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(
            compiled.subscription,
            field,
            f"{exc.message}; available names: {', '.join(sorted(context))}",
        ) from None
    except jinja2.TemplateError as exc:  # includes SecurityError and BudgetExceeded
        raise TemplateRenderError(
            compiled.subscription, field, str(exc) or type(exc).__name__
        ) from None
    except Exception as exc:
        # The boundary of operator-supplied code: whatever it raises (MemoryError,
        # RuntimeError, RecursionError ...) fails this delivery only.
        raise TemplateRenderError(
            compiled.subscription, field, f"{type(exc).__name__}: {exc}"[:500]
        ) from None
    if text is None:
        raise TemplateRenderError(
            compiled.subscription, field, f"output is longer than {limit} characters"
        )
    text = text.strip()
    if field == "link_template" and text and not text.startswith(("https://", "http://")):
        raise TemplateRenderError(
            compiled.subscription, field, f"must render an http(s) URL, got {text[:80]!r}"
        )
    if field == "title_template" and not text:
        raise TemplateRenderError(compiled.subscription, field, "rendered an empty title")
    return text


def template_problems(
    subscriptions: Iterable[SubscriptionSpec],
) -> Iterable[tuple[int, str, str]]:
    """(index, message, fix) for each subscription whose templates do not compile.

    Meant for ``eventbus config check`` (the subscriptions' own validator).
    """
    for index, subscription in enumerate(subscriptions):
        try:
            compile_templates(subscription)
        except TemplateRenderError as exc:
            yield index, str(exc), "fix the Jinja2 syntax of that template"
            continue
        for field in FIELDS:
            source = getattr(subscription, field)
            runs = _static_iterations(_ENV.parse(source)) if source else 0
            if runs > MAX_STEPS:
                yield (
                    index,
                    f"subscription {subscription.name!r} {field}: its loops run at least "
                    f"{runs:,} times, more than a render may ({MAX_STEPS:,} steps)",
                    "loop over the event's data, or use smaller range() bounds",
                )


def _static_iterations(node: nodes.Node) -> int:
    """How many times the loops under ``node`` run at least, from constant ``range()``s."""
    if isinstance(node, nodes.For):
        body = max((_static_iterations(child) for child in node.body), default=0)
        return _constant_range_length(node.iter) * max(body, 1)
    return sum(_static_iterations(child) for child in node.iter_child_nodes())


def _constant_range_length(node: nodes.Node) -> int:
    if not (isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name)):
        return 0
    if node.node.name != "range" or node.kwargs or node.dyn_args or node.dyn_kwargs:
        return 0
    try:
        bounds = [arg.as_const() for arg in node.args]
        return len(range(*bounds))
    except Exception:  # not constant, or not integers: nothing to prove
        return 0
