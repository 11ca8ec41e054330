"""Turning an envelope into a human notification (title + body lines).

The default rendering is a title such as ``capsule.create failed: capsule c1
(team-1)`` and one line each for outcome, severity, resource, actor, team,
error, metadata, time and the link. The severity line shows the effective
severity (``Event.level``: when the event has none, ``error`` for a failed
event, else ``info``); channels add their own mark of it: colour, priority
or a title tag (``channels._format.severity_look``).

A message about an alert (``Message.alert``) reads as its transition: a raise
is the event's own notification with an ``Alert:`` line; a resolve is titled
``RESOLVED: <summary>`` and says how long the alert was open and how many
events it folded in; an acknowledgement ``ACKNOWLEDGED by ana: <summary>``;
a repeat ``STILL FIRING (3h, 41 events): <summary>`` (``alert_title``,
``alert_lines``).

A subscription may replace the title, the body and the link with sandboxed
templates (``consumers.templates``); a template error raises
``TemplateRenderError`` (a ``PermanentDeliveryError``). Channels shape the
result for their transport (Telegram HTML, Discord embeds, e-mail subject +
text).
"""

from __future__ import annotations

from datetime import UTC, datetime

from eventbus.durations import format_duration
from eventbus.envelope import Event, Outcome
from eventbus.settings import SubscriptionSpec

from .channels._format import alert_fields
from .channels.base import AlertNotice, Message
from .templates import CompiledTemplates, compile_templates, render_field, template_context

__all__ = [
    "TEST_PREFIX",
    "alert_lines",
    "alert_title",
    "default_lines",
    "default_title",
    "open_for_text",
    "render",
]

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


def open_for_text(seconds: float) -> str:
    """How long an alert has been open: ``45s``, ``12m``, ``2h5m``, ``1d4h``.

    Past an hour it is rounded to the minute, past a day to the hour: nobody
    reading "still firing" needs the seconds.
    """
    whole = round(seconds)
    if whole >= 86400:
        whole = round(whole / 3600) * 3600
    elif whole >= 3600:
        whole = round(whole / 60) * 60
    return format_duration(whole) if whole >= 1 else "0s"


def _events(count: int) -> str:
    return "1 event" if count == 1 else f"{count} events"


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def alert_title(alert: AlertNotice, title: str) -> str:
    """The title of an alert's notification; ``title`` is the event's own.

    A raise (or a touch) keeps the event's title; the other notices name the
    alert by its summary (the title it was raised with).
    """
    summary = alert.summary or title
    if alert.transition == "resolved":
        return f"RESOLVED: {summary}"
    if alert.transition == "acknowledged":
        by = f" by {alert.acknowledged_by}" if alert.acknowledged_by else ""
        return f"ACKNOWLEDGED{by}: {summary}"
    if alert.transition == "repeat":
        return f"STILL FIRING ({open_for_text(alert.open_for)}, {_events(alert.count)}): {summary}"
    return title


def _alert_facts(alert: AlertNotice, event: Event) -> list[str]:
    lines = [
        f"Alert: {alert.key}",
        f"Severity: {alert.severity} (the highest while firing)",
        f"Resource: {event.resource.type} {event.resource.id}",
        f"Team: {alert.team_id}",
        f"First seen: {_when(alert.first_seen)}",
        f"Last seen: {_when(alert.last_seen)}",
    ]
    if alert.resolved_at is not None:
        lines.append(f"Resolved: {_when(alert.resolved_at)}")
    return lines


def alert_lines(alert: AlertNotice, event: Event, link: str | None = None) -> list[str]:
    """The body of an alert's notification (see the module docstring)."""
    if alert.transition in ("raised", "touched"):
        lines = default_lines(event, link)
        lines.insert(
            2, f"Alert: {alert.key}" + (f" ({_events(alert.count)})" if alert.count > 1 else "")
        )
        return lines
    age, events = open_for_text(alert.open_for), _events(alert.count)
    if alert.transition == "resolved":
        lead = f"Open for {age}; {events} folded in"
    elif alert.transition == "acknowledged":
        by = f" by {alert.acknowledged_by}" if alert.acknowledged_by else ""
        lead = f"Acknowledged{by} after {age}; {events} so far"
    else:
        lead = f"Firing for {age}; {events} so far, not acknowledged"
    lines = [lead]
    if alert.reason:
        lines.append(f"Reason: {alert.reason}")
    lines.extend(_alert_facts(alert, event))
    if link:
        lines.append(f"Link: {link}")
    return lines


def render(
    event: Event,
    subscription: SubscriptionSpec | None,
    delivery_id: str,
    *,
    test: bool = False,
    alert: AlertNotice | None = None,
) -> Message:
    """The message for one (event, subscription) delivery.

    ``test=True`` marks it as a test notification (``eventbus channels test``);
    ``alert`` makes it that alert's notification (templates see it as
    ``{{ alert }}``, see ``channels._format.alert_fields``). Raises
    ``consumers.templates.TemplateRenderError`` for a broken template.
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
            alert=alert,
        )
    return _templated(compiled, event, name, delivery_id, test, alert)


def _templated(
    compiled: CompiledTemplates,
    event: Event,
    name: str,
    delivery_id: str,
    test: bool,
    alert: AlertNotice | None,
) -> Message:
    title = default_title(event)
    context = template_context(
        event,
        delivery_id=delivery_id,
        subscription=name,
        default_title=title,
        default_body="\n".join(_lines(event, alert)),
    )
    context["alert"] = alert_fields(alert) if alert is not None else None
    link = render_field(compiled, "link_template", context) or None
    context["link"] = link
    context["default_body"] = "\n".join(_lines(event, alert, link))
    title = render_field(compiled, "title_template", context) or title
    if alert is not None:
        title = alert_title(alert, title)
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
        alert=alert,
    )


def _lines(event: Event, alert: AlertNotice | None, link: str | None = None) -> list[str]:
    return default_lines(event, link) if alert is None else alert_lines(alert, event, link)


def _default_text(message: Message) -> tuple[str, str]:
    # Message.alert may be set after render(): read it only now.
    event, alert = message.event, message.alert
    title = default_title(event)
    if alert is not None:
        title = alert_title(alert, title)
    if message.test:
        title = TEST_PREFIX + title
    return title, "\n".join(_lines(event, alert))
