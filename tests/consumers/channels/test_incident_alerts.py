"""PagerDuty and Opsgenie follow an alert's life: the exact requests of each transition.

A raise triggers (creates) on the alert's dedup key ``team:key``, an
acknowledgement acknowledges it, a resolve resolves (closes) it; a plain
event stays a trigger (create) on its own event id. Then the same requests
against a local fake server through the daemon's outbound client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from consumers.channels.base import ChannelDeps, OutcomeClass
from consumers.channels.pagerduty import DEDUP_KEY_MAX, dedup_key_of
from consumers.channels.registry import create_channel
from consumers.outbound import make_http_client
from eventbus.settings import SecuritySettings

from ..sink import Sink
from .support import Recorder, alert_message, build, make_alert, make_message, mock_client, spec

PD_KEY = "eb243592faa24ba2a5511afdf565c889"
PD_URL = f"pagerduty:///{PD_KEY}"
PD_ENDPOINT = "https://events.pagerduty.com/v2/enqueue"
OG_KEY = "eb243592-faa2-4ba2-a551-1afdf565c889"
DEDUP = "team-1:backup-failed:h1"
ACCEPTED = {"status": "success", "message": "Event processed", "dedup_key": DEDUP}


async def _sent(url: str, message: Any, status: int = 202) -> Recorder:
    recorder = Recorder(lambda request: httpx.Response(status, json=ACCEPTED))
    async with mock_client(recorder) as client:
        result = await build(client, url).send(message)
    assert result.ok, result.error
    return recorder


# --- PagerDuty -------------------------------------------------------------


async def test_pagerduty_raise_triggers_on_the_alert_dedup_key() -> None:
    recorder = await _sent(PD_URL, alert_message("raised"))
    assert (recorder.last.method, str(recorder.last.url)) == ("POST", PD_ENDPOINT)
    body = recorder.json()
    details = body["payload"].pop("custom_details")
    assert details["id"] == "01HZX0000000000000000000AA"  # the envelope
    assert body == {
        "routing_key": PD_KEY,
        "event_action": "trigger",
        "dedup_key": DEDUP,
        "payload": {
            "summary": "capsule.create failed: capsule c1 (team-1)",
            "source": "capsule:c1",
            "severity": "error",
            "timestamp": "2024-05-01T12:00:00.000Z",
            "component": "capsule",
            "group": "team-1",
            "class": "capsule.create",
        },
    }


@pytest.mark.parametrize(
    ("transition", "action"),
    [
        pytest.param("acknowledged", "acknowledge", id="acknowledge"),
        pytest.param("resolved", "resolve", id="resolve"),
    ],
)
async def test_pagerduty_acknowledge_and_resolve_exact_bodies(transition: str, action: str) -> None:
    recorder = await _sent(PD_URL, alert_message(transition))
    assert str(recorder.last.url) == PD_ENDPOINT
    assert recorder.json() == {"routing_key": PD_KEY, "event_action": action, "dedup_key": DEDUP}


async def test_pagerduty_repeat_triggers_again_with_the_raised_summary_and_top_severity() -> None:
    recorder = await _sent(PD_URL, alert_message("repeat", severity="critical"))
    body = recorder.json()
    assert (body["event_action"], body["dedup_key"]) == ("trigger", DEDUP)
    # the incident keeps its title, not "STILL FIRING ..."
    assert body["payload"]["summary"] == "capsule.create failed: capsule c1 (team-1)"
    assert body["payload"]["severity"] == "critical"


async def test_pagerduty_plain_event_stays_a_trigger_on_its_event_id() -> None:
    recorder = await _sent(PD_URL, make_message())
    body = recorder.json()
    assert (body["event_action"], body["dedup_key"]) == ("trigger", "01HZX0000000000000000000AA")


async def test_pagerduty_alert_wins_over_the_url_action_and_dedup_key() -> None:
    url = f"{PD_URL}?action=resolve&dedup_key=db-1"
    recorder = await _sent(url, alert_message("raised"))
    assert (recorder.json()["event_action"], recorder.json()["dedup_key"]) == ("trigger", DEDUP)


def test_pagerduty_long_dedup_key_fits_and_stays_distinct() -> None:
    long_a = make_alert(team_id="t" * 256, key="k" * 199 + "a")
    long_b = make_alert(team_id="t" * 256, key="k" * 199 + "b")
    assert len(dedup_key_of(long_a)) == DEDUP_KEY_MAX
    assert dedup_key_of(long_a) != dedup_key_of(long_b)
    assert dedup_key_of(make_alert()) == DEDUP


async def test_pagerduty_429_on_a_resolve_is_rate_limited() -> None:
    recorder = Recorder(lambda request: httpx.Response(429, headers={"Retry-After": "30"}))
    async with mock_client(recorder) as client:
        result = await build(client, PD_URL).send(alert_message("resolved"))
    assert (result.outcome, result.retry_after) == (OutcomeClass.RATE_LIMITED, 30.0)


# --- Opsgenie --------------------------------------------------------------


def _opsgenie(host: str = "api.opsgenie.com", query: str = "") -> str:
    return f"opsgenie://{host}/{OG_KEY}{query}"


async def test_opsgenie_raise_creates_with_the_alias() -> None:
    recorder = await _sent(_opsgenie(query="?alias=ignored&tags=db"), alert_message("raised"))
    request = recorder.last
    assert (request.method, str(request.url)) == ("POST", "https://api.opsgenie.com/v2/alerts")
    assert request.headers["authorization"] == f"GenieKey {OG_KEY}"
    body = recorder.json()
    assert body.pop("description").startswith("Outcome: error\nSeverity: error\nAlert: ")
    assert body == {
        "message": "capsule.create failed: capsule c1 (team-1)",
        "alias": DEDUP,
        "tags": ["db"],
        "entity": "capsule:c1",
        "priority": "P2",
    }


@pytest.mark.parametrize(
    ("transition", "verb", "expected"),
    [
        pytest.param(
            "acknowledged",
            "acknowledge",
            {
                "source": "eventbus",
                "user": "ana",
                "note": "Acknowledged by ana after 3h; 41 events so far",
            },
            id="acknowledge",
        ),
        pytest.param(
            "resolved",
            "close",
            {"source": "eventbus", "note": "Open for 3h5m; 41 events folded in"},
            id="close",
        ),
    ],
)
async def test_opsgenie_acknowledge_and_close_exact_requests(
    transition: str, verb: str, expected: dict[str, str]
) -> None:
    recorder = await _sent(_opsgenie(), alert_message(transition))
    request = recorder.last
    assert request.method == "POST"
    assert str(request.url) == (
        f"https://api.opsgenie.com/v2/alerts/team-1%3Abackup-failed%3Ah1/{verb}"
        "?identifierType=alias"
    )
    assert request.headers["authorization"] == f"GenieKey {OG_KEY}"
    assert recorder.json() == expected


async def test_opsgenie_close_names_the_reason_and_the_url_user_and_source() -> None:
    message = alert_message("resolved", reason="auto-resolved: not seen for 30m")
    recorder = await _sent(_opsgenie(query="?user=bot&source=backups"), message)
    assert recorder.json() == {
        "source": "backups",
        "user": "bot",
        "note": "Open for 3h5m; 41 events folded in (auto-resolved: not seen for 30m)",
    }


async def test_opsgenie_eu_host_and_a_key_with_a_slash() -> None:
    message = alert_message("resolved", key="disk/full:h1")
    recorder = await _sent(_opsgenie("api.eu.opsgenie.com"), message)
    assert str(recorder.last.url) == (
        "https://api.eu.opsgenie.com/v2/alerts/team-1%3Adisk%2Ffull%3Ah1/close?identifierType=alias"
    )


async def test_opsgenie_plain_event_creates_on_its_event_id() -> None:
    recorder = await _sent(_opsgenie(), make_message())
    assert str(recorder.last.url) == "https://api.opsgenie.com/v2/alerts"
    assert recorder.json()["alias"] == "01HZX0000000000000000000AA"


async def test_opsgenie_429_on_a_close_is_rate_limited() -> None:
    recorder = Recorder(lambda request: httpx.Response(429, headers={"Retry-After": "5"}))
    async with mock_client(recorder) as client:
        result = await build(client, _opsgenie()).send(alert_message("resolved"))
    assert (result.outcome, result.retry_after) == (OutcomeClass.RATE_LIMITED, 5.0)


# --- against a local fake server -----------------------------------------


@pytest.fixture
async def provider() -> AsyncIterator[Sink]:
    sink = Sink(default=202)
    await sink.start()
    yield sink
    await sink.stop()


def _actions(bodies: list[dict[str, Any]]) -> list[Any]:
    return [(body["event_action"], body["dedup_key"]) for body in bodies]


def _opsgenie_steps(bodies: list[dict[str, Any]]) -> list[Any]:
    return [bodies[0]["alias"], *(body["note"].split(";")[0] for body in bodies[1:])]


@pytest.mark.parametrize(
    ("url", "paths", "read", "expected"),
    [
        pytest.param(
            PD_URL,
            ["/v2/enqueue"] * 3,
            _actions,
            [("trigger", DEDUP), ("acknowledge", DEDUP), ("resolve", DEDUP)],
            id="pagerduty",
        ),
        pytest.param(
            _opsgenie(),
            [
                "/v2/alerts",
                "/v2/alerts/team-1:backup-failed:h1/acknowledge",
                "/v2/alerts/team-1:backup-failed:h1/close",
            ],
            _opsgenie_steps,
            [DEDUP, "Acknowledged by ana after 3h", "Open for 3h5m"],
            id="opsgenie",
        ),
    ],
)
async def test_alert_life_against_a_local_server(
    provider: Sink, url: str, paths: list[str], read: Any, expected: list[Any]
) -> None:
    security = SecuritySettings(allow_private_targets=True)
    async with make_http_client(security, timeout=5) as http:
        channel = create_channel(
            spec(url, api_base=f"http://127.0.0.1:{provider.port}"),
            ChannelDeps(http=http, security=security),
        )
        for transition in ("raised", "acknowledged", "resolved"):
            result = await channel.send(alert_message(transition))
            assert result.ok, result.error
    assert [received.path for received in provider.received] == paths
    assert read([json.loads(received.body) for received in provider.received]) == expected
