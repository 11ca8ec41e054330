"""Shared helpers for the channel tests: events, messages, a recording MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from consumers.channels.base import AlertNotice, Channel, ChannelDeps, Message
from consumers.channels.registry import create_channel
from consumers.rendering import render
from eventbus.envelope import Event
from eventbus.settings import ChannelSpec

Handler = Callable[[httpx.Request], httpx.Response]


def make_event(outcome: str | None = "error", **extra: Any) -> Event:
    fields: dict[str, Any] = {
        "event": "capsule.create",
        "team_id": "team-1",
        "actor": {"type": "user", "id": "u1", "name": "alice"},
        "resource": {"id": "c1", "type": "capsule"},
        "metadata": {"region": "eu"},
        "timestamp": "2024-05-01T12:00:00.000Z",
        "id": "01HZX0000000000000000000AA",
    }
    if outcome is not None:
        fields["outcome"] = outcome
    if outcome == "error":
        fields["error"] = "quota exceeded"
    fields.update(extra)
    return Event(**fields)


def make_message(
    title: str = "capsule.create failed: capsule c1 (team-1)",
    body: str = "Outcome: error\nError: quota exceeded",
    *,
    outcome: str | None = "error",
    link: str | None = None,
    delivery_id: str = "dlv_1",
    severity: str | None = None,
) -> Message:
    extra = {"severity": severity} if severity is not None else {}
    return Message(
        title=title,
        body=body,
        event=make_event(outcome, **extra),
        delivery_id=delivery_id,
        subscription="ops",
        link=link,
    )


# 2024-05-01T09:00:00Z, three hours before make_event's timestamp
FIRST_SEEN = 1714554000.0


def make_alert(transition: str = "raised", **extra: Any) -> AlertNotice:
    """An alert notice of team-1's ``backup-failed:h1``, open for 3h with 41 events."""
    status = {"resolved": "resolved", "acknowledged": "acknowledged"}.get(transition, "firing")
    fields: dict[str, Any] = {
        "id": "01HZXALERT0000000000000001",
        "team_id": "team-1",
        "key": "backup-failed:h1",
        "transition": transition,
        "status": status,
        "severity": "error",
        "first_seen": FIRST_SEEN,
        "last_seen": FIRST_SEEN + 3 * 3600,
        "count": 41 if transition != "raised" else 1,
        "summary": "capsule.create failed: capsule c1 (team-1)",
    }
    if transition == "resolved":
        fields["resolved_at"] = FIRST_SEEN + 3 * 3600 + 300
    if transition == "acknowledged":
        fields["acknowledged_by"] = "ana"
    fields.update(extra)
    return AlertNotice(**fields)


def alert_message(
    transition: str = "raised", *, outcome: str | None = None, link: str | None = None, **extra: Any
) -> Message:
    """The default-rendered notification of ``make_alert(transition)``."""
    if outcome is None:
        outcome = "success" if transition == "resolved" else "error"
    alert = make_alert(transition, **extra)
    message = render(make_event(outcome), None, "dlv_alert_1", alert=alert)
    message.link = link
    return message


class Recorder:
    """A MockTransport handler keeping every request; answers from ``answer``."""

    def __init__(self, answer: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (lambda request: httpx.Response(200, json={"ok": True}))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def spec(url: str | None = None, name: str = "ch", **options: Any) -> ChannelSpec:
    return ChannelSpec(name=name, url=url, **options)


def build(client: httpx.AsyncClient, url: str | None = None, **options: Any) -> Channel:
    return create_channel(spec(url, **options), ChannelDeps(http=client, timeout=5.0))


def mock_client(recorder: Recorder) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(recorder))
