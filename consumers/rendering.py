"""Turning an envelope into a human notification (title + body lines).

The default rendering is a title such as ``capsule.create failed: capsule c1
(team-1)`` and one line each for outcome, severity, resource, actor, team,
error, metadata, time and the link. The severity line shows the effective
severity (``Event.level``: when the event has none, ``error`` for a failed
event, else ``info``); channels add their own mark of it: colour, priority
or a title tag (``channels._format.severity_look``).

A subscription may replace the title, the body and the link with sandboxed
templates (``consumers.templates``); a template error raises
``TemplateRenderError`` (a ``PermanentDeliveryError``). Channels shape the
result for their transport (Telegram HTML, Discord embeds, e-mail subject +
text).
"""

from __future__ import annotations

from eventbus.envelope import Event, Outcome
from eventbus.settings import SubscriptionSpec

from .channels.base import Message
from .templates import compile_templates, render_field, template_context

__all__ = ["TEST_PREFIX", "default_lines", "default_title", "render"]

TEST_PREFIX = "[test] "
_VERB = {Outcome.SUCCESS: "succeeded", Outcome.ERROR: "failed", None: ""}


def default_title(event: Event) -> str:
    """e.g. ``capsule.create failed: capsule c1 (team-1)``."""
    verb = _VERB[event.outcome]
    head = f"{event.event} {verb}".strip()
    return f"{head}: {event.resource.type} {event.resource.id} ({event.team_id})"


def default_lines(event: Event, link: str | None = None) -> list[str]:
    actor = event.actor.name or event.actor.id or ""
    lines = [
        f"Outcome: {event.outcome_name}",
        f"Severity: {event.level.value}",
        f"Resource: {event.resource.type} {event.resource.id}",
        f"Actor: {event.actor.type.value}{' ' + actor if actor else ''}",
        f"Team: {event.team_id}",
    ]
    if event.error:
        lines.append(f"Error: {event.error}")
    lines.extend(f"{key}: {value}" for key, value in sorted(event.metadata.items()))
    lines.append(f"Time: {event.timestamp_text}")
    if link:
        lines.append(f"Link: {link}")
    return lines


def render(
    event: Event,
    subscription: SubscriptionSpec | None,
    delivery_id: str,
    *,
    test: bool = False,
) -> Message:
    """The message for one (event, subscription) delivery.

    ``test=True`` marks it as a test notification (``eventbus channels test``).
    Raises ``consumers.templates.TemplateRenderError`` for a broken template.
    """
    name = subscription.name if subscription else ""
    compiled = (
        compile_templates(subscription)
        if subscription is not None
        and (
            subscription.title_template is not None
            or subscription.body_template is not None
            or subscription.link_template is not None
        )
        else None
    )
    if compiled is None or compiled.empty:
        # The default text cannot fail: make it only if a channel reads it.
        return Message(
            event=event,
            delivery_id=delivery_id,
            subscription=name,
            test=test,
            render=_default_text,
        )
    title = default_title(event)
    context = template_context(
        event,
        delivery_id=delivery_id,
        subscription=name,
        default_title=title,
        default_body="\n".join(default_lines(event)),
    )
    link = render_field(compiled, "link_template", context) or None
    context["link"] = link
    context["default_body"] = "\n".join(default_lines(event, link))
    title = render_field(compiled, "title_template", context) or title
    rendered_body = render_field(compiled, "body_template", context)
    body = rendered_body if rendered_body is not None else context["default_body"]
    if test:
        title = TEST_PREFIX + title
    return Message(
        title=title,
        body=body,
        event=event,
        delivery_id=delivery_id,
        subscription=name,
        link=link,
        test=test,
    )


def _default_text(message: Message) -> tuple[str, str]:
    title = default_title(message.event)
    if message.test:
        title = TEST_PREFIX + title
    return title, "\n".join(default_lines(message.event))
