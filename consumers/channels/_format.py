"""Shaping a rendered message for a transport: splitting, escaping, colours, severity."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventbus.envelope import Outcome, Severity

from .base import AlertNotice, Message

__all__ = [
    "ACKNOWLEDGED_LOOK",
    "RESOLVED_LOOK",
    "SEVERITY_LOOKS",
    "SeverityLook",
    "alert_fields",
    "escape_html",
    "escape_markdown_v2",
    "headline",
    "keeps_options",
    "plain_text",
    "severity_look",
    "split_text",
    "tagged_text",
]

_MDV2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def plain_text(message: Message) -> str:
    """Title, body and the link (when the body does not already show it)."""
    text = message.text
    if message.link and message.link not in text:
        text = f"{text}\n{message.link}"
    return text


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at line ends where possible.

    A single line longer than ``limit`` is cut at the last space before the
    limit, or hard at the limit when it has none.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            head, line = line[:cut], line[cut:].lstrip(" ")
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
        candidate = f"{current}\n{line}" if current else line
        if current and len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts


def escape_html(text: str) -> str:
    """Telegram's HTML mode needs only ``<``, ``>`` and ``&`` escaped."""
    return html.escape(text, quote=False)


def escape_markdown_v2(text: str) -> str:
    return _MDV2_SPECIAL.sub(r"\\\1", text)


@dataclass(frozen=True, slots=True)
class SeverityLook:
    """How each kind of channel shows one severity (``Event.level``).

    ``tag`` prefixes titles on channels that have no colour or priority
    (Telegram, Teams, Google Chat, Matrix, e-mail subjects, console, generic);
    it is empty below ``warning``, so routine events are not all tagged, and
    only used when the event sets its severity (see ``headline``). A
    channel's own URL option (``color=``, ``priority=``, ``tags=``) wins.
    """

    color: int  # Discord embed; Slack / Mattermost attachment as #RRGGBB
    tag: str
    ntfy_priority: int  # 1 (min) .. 5 (max)
    ntfy_tags: str  # emoji short codes
    pushover_priority: int  # -2 .. 2 (2: emergency, repeated until acknowledged)
    gotify_priority: int  # 0 .. 10
    teams_color: str  # an Adaptive Card TextBlock colour

    @property
    def hex_color(self) -> str:
        return f"#{self.color:06X}"


SEVERITY_LOOKS: dict[Severity, SeverityLook] = {
    Severity.DEBUG: SeverityLook(0x95A5A6, "", 2, "mag", -1, 2, "Default"),
    Severity.INFO: SeverityLook(0x3498DB, "", 3, "information_source", 0, 4, "Accent"),
    Severity.WARNING: SeverityLook(0xF39C12, "[WARNING]", 4, "warning", 0, 6, "Warning"),
    Severity.ERROR: SeverityLook(0xE74C3C, "[ERROR]", 4, "rotating_light", 1, 8, "Attention"),
    Severity.CRITICAL: SeverityLook(0x992D22, "[CRITICAL]", 5, "sos", 2, 10, "Attention"),
}
# An info event that succeeded keeps the green of success.
_INFO_SUCCESS = SeverityLook(0x2ECC71, "", 3, "white_check_mark", 0, 4, "Good")
# An alert's resolve notice: green and quiet, whatever the alert's severity.
RESOLVED_LOOK = SeverityLook(0x2ECC71, "", 2, "white_check_mark", -1, 2, "Good")
# An acknowledgement: someone is on it; grey and quiet.
ACKNOWLEDGED_LOOK = SeverityLook(0x95A5A6, "", 2, "eyes", -1, 2, "Default")
_CALM = {"resolved": RESOLVED_LOOK, "acknowledged": ACKNOWLEDGED_LOOK}
_LEVELS = frozenset(level.value for level in Severity)


def severity_look(message: Message) -> SeverityLook:
    """The presentation of the message's effective severity (``Event.level``).

    An alert's notification shows the alert instead: a resolve notice
    ``RESOLVED_LOOK``, an acknowledgement ``ACKNOWLEDGED_LOOK``, a raise or
    repeat the alert's severity (the highest seen while firing).
    """
    alert = message.alert
    if alert is not None:
        calm = _CALM.get(alert.transition)
        if calm is not None:
            return calm
        if alert.severity in _LEVELS:
            return SEVERITY_LOOKS[Severity(alert.severity)]
    event = message.event
    level = event.level
    if level is Severity.INFO and event.outcome is Outcome.SUCCESS:
        return _INFO_SUCCESS
    return SEVERITY_LOOKS[level]


def keeps_options(message: Message) -> bool:
    """Whether a channel's own colour or priority option applies to ``message``.

    Not for an alert's resolve or acknowledge notice: it always looks calm
    (a ``priority=2`` Pushover channel must not page anyone about a recovery).
    """
    return message.alert is None or message.alert.transition not in _CALM


def headline(message: Message, prefix: str = "") -> str:
    """The title with the severity tag and a channel's own ``title=`` prefix.

    e.g. ``[CRITICAL] prod: host.down failed: host h1 (ops)``. A failed event
    without a severity (``error`` by default) gets no tag: its title already
    says "failed"; neither does a resolve or acknowledge notice (its title
    says ``RESOLVED:`` or ``ACKNOWLEDGED``).
    """
    title = f"{prefix}: {message.title}" if prefix else message.title
    severity = message.event.severity
    tag = SEVERITY_LOOKS[severity].tag if severity is not None and keeps_options(message) else ""
    return f"{tag} {title}" if tag else title


def _when(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_fields(alert: AlertNotice) -> dict[str, Any]:
    """The alert as JSON data: the webhook's ``alert`` object and templates' ``{{ alert }}``.

    Times are RFC 3339 UTC (as the envelope's ``timestamp``); ``open_for`` is
    seconds; ``dedup_key`` is what PagerDuty and Opsgenie dedupe on.
    """
    return {
        "id": alert.id,
        "team_id": alert.team_id,
        "key": alert.key,
        "dedup_key": alert.dedup_key,
        "transition": alert.transition,
        "status": alert.status,
        "severity": alert.severity,
        "first_seen": _when(alert.first_seen),
        "last_seen": _when(alert.last_seen),
        "count": alert.count,
        "summary": alert.summary,
        "open_for": round(alert.open_for, 3),
        "acknowledged_by": alert.acknowledged_by,
        "resolved_at": _when(alert.resolved_at),
        "reason": alert.reason,
    }


def tagged_text(message: Message) -> str:
    """``plain_text`` with the title as ``headline`` gives it (the severity tag)."""
    return headline(message) + plain_text(message)[len(message.title) :]
