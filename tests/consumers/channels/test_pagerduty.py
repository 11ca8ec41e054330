"""PagerDuty Events API v2: shoutrrr's URL table, the trigger event, errors, the guard.

Sources are paths in nicholas-fedor/shoutrrr: docs/services/incident/pagerduty/index.md
(docs) and pkg/services/incident/pagerduty/pagerduty_test.go (tests).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from consumers.channels.base import ChannelDeps, Message, OutcomeClass
from consumers.channels.pagerduty import PagerDutyChannel
from consumers.channels.registry import channel_warnings, create_channel
from consumers.outbound import make_http_client
from consumers.ratelimit import limiter_for
from eventbus.cli import cli
from eventbus.errors import ChannelConfigError
from eventbus.settings import SecuritySettings

from .support import Recorder, build, make_event, make_message, mock_client, spec

DOCS = "docs/services/incident/pagerduty/index.md"
TESTS = "pkg/services/incident/pagerduty/pagerduty_test.go"
KEY = "eb243592faa24ba2a5511afdf565c889"
MOCK_KEY = "a1b2c3d4e5f678901234567890abcdef"  # pagerduty_test.go
ACCEPTED = {"status": "success", "message": "Event processed", "dedup_key": "x"}
CONTEXTS = (
    '[{"type":"link","href":"https://github.com/org/repo/actions/runs/123",'
    '"text":"GitHub Actions Run"},{"type":"image",'
    '"src":"https://example.com/failure-screenshot.png","text":"Build Failure"}]'
)


def _fields(channel: Any) -> dict[str, Any]:
    assert isinstance(channel, PagerDutyChannel)
    return {
        "endpoint": channel.endpoint,
        "severity": channel.severity,
        "source": channel.source,
        "dedup_key": channel.dedup_key,
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            f"pagerduty:///{KEY}",
            {"endpoint": "https://events.pagerduty.com/v2/enqueue", "severity": None},
            id=f"{DOCS}: default configuration",
        ),
        pytest.param(
            f"pagerduty://events.pagerduty.com/{KEY}",
            {"endpoint": "https://events.pagerduty.com/v2/enqueue"},
            id=f"{DOCS}: custom host",
        ),
        pytest.param(
            f"pagerduty://events.pagerduty.com/{KEY}?severity=critical&source=production-db",
            {"severity": "critical", "source": "production-db"},
            id=f"{DOCS}: with parameters",
        ),
        pytest.param(
            f"pagerduty://events.pagerduty.com/{KEY}?severity=warning&source=monitoring"
            '&details={"component":"api","version":"1.2.3","response_time":"5.2s"}',
            {"severity": "warning", "source": "monitoring"},
            id=f"{DOCS}: with custom details",
        ),
        pytest.param(
            f"pagerduty://events.pagerduty.com/{KEY}?severity=error&source=ci-pipeline"
            f"&contexts={CONTEXTS}&client=jenkins&client_url=https://ci.example.com/job/123",
            {"severity": "error", "source": "ci-pipeline"},
            id=f"{DOCS}: with contexts and client info",
        ),
        pytest.param(
            f"pagerduty:///{KEY}?action=acknowledge",
            {"severity": None},
            id=f"{DOCS}: acknowledge (plain events; reported without dedup_key)",
        ),
        pytest.param(
            f"pagerduty:///{KEY}?action=resolve",
            {"endpoint": "https://events.pagerduty.com/v2/enqueue"},
            id=f"{DOCS}: resolve (plain events; reported without dedup_key)",
        ),
        pytest.param(
            f"pagerduty://events.pagerduty.com/{MOCK_KEY}",
            {"endpoint": "https://events.pagerduty.com/v2/enqueue"},
            id=f"{TESTS}: simple URL",
        ),
        pytest.param(
            f"pagerduty://events.pagerduty.com:12345/{MOCK_KEY}",
            {"endpoint": "https://events.pagerduty.com:12345/v2/enqueue"},
            id=f"{TESTS}: url with port",
        ),
        pytest.param(
            f"pagerduty://events.pagerduty.com:12345/{MOCK_KEY}"
            "?severity=critical&source=my-app&action=trigger",
            {"severity": "critical", "source": "my-app"},
            id=f"{TESTS}: query parameters",
        ),
        pytest.param(
            f"pagerduty://events.pagerduty.com:12345/{MOCK_KEY}?source=my app",
            {"source": "my app"},
            id=f"{TESTS}: escaped spaces",
        ),
        pytest.param(
            f"pagerduty://events.pagerduty.com/{MOCK_KEY}?severity=critical&source=beszel&action=resolve",
            {"severity": "critical", "source": "beszel"},
            id=f"{TESTS}: action=resolve (plain events; reported without dedup_key)",
        ),
        pytest.param(
            f"pagerduty://events.pagerduty.com/{MOCK_KEY}?client=my-monitor"
            "&client_url=https://example.com&details=%7B%22key%22%3A%22value%22%7D",
            {"severity": None},
            id=f"{TESTS}: optional fields",
        ),
        pytest.param(
            f"pagerduty:///{KEY}?Severity=info&DEDUP_KEY=db-1",
            {"severity": "info", "dedup_key": "db-1"},
            id="keys are case-insensitive",
        ),
    ],
)
def test_url_good(url: str, expected: dict[str, Any]) -> None:
    fields = _fields(build(httpx.AsyncClient(), url))
    assert {key: fields[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param(
            "pagerduty://events.pagerduty.com", "no integration key", id=f"{TESTS}: missing key"
        ),
        pytest.param(
            "pagerduty:///not-a-key", "not 32 hex digits", id=f"{DOCS}: API keys are not supported"
        ),
        pytest.param(f"pagerduty:///{KEY}/extra", "not 32 hex digits", id="extra path segment"),
        pytest.param(
            f"pagerduty:///{KEY}?severity=high",
            "severity 'high'",
            id="invalid severity (pagerduty.go validateSeverity)",
        ),
        pytest.param(
            f"pagerduty:///{KEY}?action=close",
            "action 'close'",
            id="invalid action (pagerduty.go validateEventAction)",
        ),
        pytest.param(
            f"pagerduty:///{KEY}?details={{key:value}}",
            "details is not JSON",
            id=f"{DOCS}: details missing quotes",
        ),
        pytest.param(
            f'pagerduty:///{KEY}?contexts=[{{"type":"video","href":"x"}}]',
            "not a link with href",
            id=f"{DOCS}: only link and image contexts",
        ),
        pytest.param(
            f"pagerduty:///{KEY}?contexts=link",
            "not type:value",
            id=f"{TESTS}: legacy context format",
        ),
        pytest.param(f"pagerduty:///{KEY}?foo=bar", "unknown query key", id="unknown key"),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


def message_with(severity: str | None = None, outcome: str | None = "error") -> Message:
    extra = {"severity": severity} if severity else {}
    return Message(
        title="capsule.create failed: capsule c1 (team-1)",
        body="Outcome: error",
        event=make_event(outcome, **extra),
        delivery_id="dlv_1",
        link="https://ops.example.com/c1",
    )


async def test_exact_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(202, json=ACCEPTED))
    async with mock_client(recorder) as client:
        result = await build(client, f"pagerduty:///{KEY}").send(message_with())
    assert result.ok and result.status == 202
    request = recorder.last
    assert (request.method, str(request.url)) == ("POST", "https://events.pagerduty.com/v2/enqueue")
    assert request.headers["content-type"] == "application/json"
    body = recorder.json()
    envelope = body["payload"].pop("custom_details")
    assert envelope["id"] == "01HZX0000000000000000000AA"
    assert envelope["resource"] == {"id": "c1", "type": "capsule"}
    assert body == {
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "01HZX0000000000000000000AA",
        "payload": {
            "summary": "capsule.create failed: capsule c1 (team-1)",
            "source": "capsule:c1",
            "severity": "error",
            "timestamp": "2024-05-01T12:00:00.000Z",
            "component": "capsule",
            "group": "team-1",
            "class": "capsule.create",
        },
        "links": [
            {
                "href": "https://ops.example.com/c1",
                "text": "capsule.create failed: capsule c1 (team-1)",
            }
        ],
    }


@pytest.mark.parametrize(
    ("severity", "outcome", "expected"),
    [
        pytest.param("debug", None, "info", id="debug"),
        pytest.param(None, "success", "info", id="info-by-default"),
        pytest.param("warning", None, "warning", id="warning"),
        pytest.param(None, "error", "error", id="error-outcome"),
        pytest.param("critical", "error", "critical", id="critical"),
    ],
)
async def test_severity_follows_the_envelope(
    severity: str | None, outcome: str | None, expected: str
) -> None:
    recorder = Recorder(lambda request: httpx.Response(202, json=ACCEPTED))
    async with mock_client(recorder) as client:
        await build(client, f"pagerduty:///{KEY}").send(message_with(severity, outcome))
        await build(client, f"pagerduty:///{KEY}?severity=info").send(
            message_with(severity, outcome)
        )
    assert recorder.json(0)["payload"]["severity"] == expected
    assert recorder.json(1)["payload"]["severity"] == "info"  # the URL wins


async def test_url_options_in_the_body() -> None:
    url = (
        f"pagerduty://events.pagerduty.com/{KEY}?source=ci&dedup_key=build-7"
        f'&details={{"component":"api"}}&contexts={CONTEXTS}&client=jenkins'
        "&client_url=https://ci.example.com/job/123"
    )
    recorder = Recorder(lambda request: httpx.Response(202, json=ACCEPTED))
    async with mock_client(recorder) as client:
        await build(client, url).send(make_message())
    body = recorder.json()
    assert body["dedup_key"] == "build-7"
    assert body["payload"]["source"] == "ci"
    assert body["payload"]["custom_details"]["details"] == {"component": "api"}
    assert body["links"] == [
        {"href": "https://github.com/org/repo/actions/runs/123", "text": "GitHub Actions Run"}
    ]
    assert body["images"] == [
        {"src": "https://example.com/failure-screenshot.png", "alt": "Build Failure"}
    ]
    assert (body["client"], body["client_url"]) == ("jenkins", "https://ci.example.com/job/123")


def test_legacy_contexts_form() -> None:
    # pagerduty_test.go "should include contexts in the payload": text contexts are skipped
    url = (
        f"pagerduty:///{KEY}?contexts=link:http://example.com,text:Additional+context,"
        "image:http://example.com/img.png"
    )
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, PagerDutyChannel)
    body = channel.event_body(make_message())
    assert body["links"] == [{"href": "http://example.com"}]
    assert body["images"] == [{"src": "http://example.com/img.png"}]


def test_acknowledge_and_resolve_bodies_for_alert_transitions() -> None:
    channel = build(httpx.AsyncClient(), f"pagerduty:///{KEY}")
    assert isinstance(channel, PagerDutyChannel)
    body = channel.event_body(make_message(), action="resolve", dedup_key="alert-1")
    assert body == {"routing_key": KEY, "event_action": "resolve", "dedup_key": "alert-1"}


def test_action_without_dedup_key_is_reported() -> None:
    (warning,) = channel_warnings(spec(f"pagerduty:///{KEY}?action=resolve", name="pd"))
    assert "action=resolve without dedup_key" in warning
    assert channel_warnings(spec(f"pagerduty:///{KEY}?action=trigger")) == []
    assert channel_warnings(spec(f"pagerduty:///{KEY}?action=resolve&dedup_key=db-1")) == []


async def test_url_action_applies_to_plain_events() -> None:
    # shoutrrr's use: a channel that resolves the incident its dedup_key names
    recorder = Recorder(lambda request: httpx.Response(202, json=ACCEPTED))
    async with mock_client(recorder) as client:
        await build(client, f"pagerduty:///{KEY}?action=resolve&dedup_key=db-1").send(
            make_message()
        )
    assert recorder.json() == {"routing_key": KEY, "event_action": "resolve", "dedup_key": "db-1"}


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after", "needle"),
    [
        pytest.param(
            httpx.Response(
                400,
                json={
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"],
                },
            ),
            OutcomeClass.PERMANENT,
            None,
            "Event object is invalid; Length of 'routing_key'",
            id="400-invalid-event",
        ),
        pytest.param(
            httpx.Response(400, json={"status": "invalid event", "message": "Invalid routing key"}),
            OutcomeClass.PERMANENT,
            None,
            "Invalid routing key",
            id="bad-key",
        ),
        pytest.param(
            httpx.Response(429), OutcomeClass.RETRYABLE, None, "HTTP 429", id="429-no-hint"
        ),
        pytest.param(
            httpx.Response(429, headers={"Retry-After": "60"}),
            OutcomeClass.RATE_LIMITED,
            60.0,
            "HTTP 429",
            id="429-retry-after",
        ),
        pytest.param(httpx.Response(500), OutcomeClass.RETRYABLE, None, "HTTP 500", id="500"),
    ],
)
async def test_errors(
    answer: httpx.Response, outcome: OutcomeClass, retry_after: float | None, needle: str
) -> None:
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, f"pagerduty:///{KEY}").send(make_message())
    assert (result.outcome, result.retry_after) == (outcome, retry_after)
    assert needle in (result.error or "")


async def test_api_base_override() -> None:
    recorder = Recorder(lambda request: httpx.Response(202, json=ACCEPTED))
    async with mock_client(recorder) as client:
        channel = build(client, f"pagerduty:///{KEY}", api_base="http://127.0.0.1:9")
        await channel.send(make_message())
    assert str(recorder.last.url) == "http://127.0.0.1:9/v2/enqueue"


async def test_private_target_refused_without_allow_private() -> None:
    security = SecuritySettings()
    async with make_http_client(security, timeout=5) as http:
        channel = create_channel(
            spec(f"pagerduty://127.0.0.1:1/{KEY}"), ChannelDeps(http=http, security=security)
        )
        result = await channel.send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert "security.allow_private_targets" in (result.error or "")


def test_default_rate_limit_stays_under_120_a_minute() -> None:
    limiter = limiter_for(spec(f"pagerduty:///{KEY}"), "pagerduty")
    assert limiter is not None and limiter.channel_spec is not None
    bucket = limiter.channel_spec
    assert bucket.burst + bucket.rate * 60 / bucket.per <= 120


def test_urls_verify_masks_the_key() -> None:
    result = CliRunner().invoke(cli, ["urls", "verify", f"pagerduty:///{KEY}?severity=critical"])
    assert result.exit_code == 0, result.output
    assert "POST https://events.pagerduty.com/v2/enqueue" in result.stdout
    assert '"routing_key": "***"' in result.stdout
    assert '"event_action": "trigger"' in result.stdout
    assert KEY not in result.stdout + result.stderr
