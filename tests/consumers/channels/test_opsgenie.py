"""Opsgenie Alert API: shoutrrr's URL table, the create-alert request, errors, the guard.

Sources are paths in nicholas-fedor/shoutrrr: docs/services/incident/opsgenie/index.md
(docs) and pkg/services/incident/opsgenie/opsgenie_test.go (tests).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from consumers.channels.base import ChannelDeps, Message, OutcomeClass
from consumers.channels.opsgenie import OpsgenieChannel
from consumers.channels.registry import create_channel
from consumers.outbound import make_http_client
from consumers.ratelimit import limiter_for
from eventbus.cli import cli
from eventbus.errors import ChannelConfigError
from eventbus.settings import SecuritySettings

from .support import Recorder, build, make_event, make_message, mock_client, spec

DOCS = "docs/services/incident/opsgenie/index.md"
TESTS = "pkg/services/incident/opsgenie/opsgenie_test.go"
KEY = "eb243592-faa2-4ba2-a551q-1afdf565c889"
ACCEPTED = {"result": "Request will be processed", "took": 0.302, "requestId": "43a29c5c"}
TEAM_ID = "4513b7ea-3b91-438f-b7e4-e3e54af9147c"
USER_ID = "696f0759-3b0f-4a15-b8c8-19d3dfca33f2"


def fields_of(url: str) -> dict[str, Any]:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, OpsgenieChannel)
    return {"endpoint": channel.endpoint, **channel.fields}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            f"opsgenie://api.opsgenie.com/{KEY}",
            {"endpoint": "https://api.opsgenie.com/v2/alerts"},
            id=f"{DOCS}: token URL",
        ),
        pytest.param(
            f"opsgenie://api.opsgenie.com:12345/{KEY}",
            {"endpoint": "https://api.opsgenie.com:12345/v2/alerts"},
            id=f"{TESTS}: url with port",
        ),
        pytest.param(
            f"opsgenie://api.eu.opsgenie.com/{KEY}",
            {"endpoint": "https://api.eu.opsgenie.com/v2/alerts"},
            id=f"{DOCS}: EU instance",
        ),
        pytest.param(
            f"opsgenie:///{KEY}",
            {"endpoint": "https://api.opsgenie.com/v2/alerts"},
            id="empty host: api.opsgenie.com (opsgenie_config.go default)",
        ),
        pytest.param(
            f"opsgenie://api.opsgenie.com:12345/{KEY}?alias=Life+is+too+short+for+no+alias"
            "&description=Every+alert+needs+a+description&actions=An+action&tags=tag1,tag2"
            "&details=key:value,key2:value2&entity=An+example+entity&source=The+source"
            "&priority=P1&user=Dracula&note=Here+is+a+note&responders=user:Test,team:NOC"
            "&visibleTo=user:A+User",
            {
                "alias": "Life is too short for no alias",
                "responders": [
                    {"type": "user", "username": "Test"},
                    {"type": "team", "name": "NOC"},
                ],
                "visibleTo": [{"type": "user", "username": "A User"}],
                "actions": ["An action"],
                "tags": ["tag1", "tag2"],
                "details": {"key": "value", "key2": "value2"},
                "entity": "An example entity",
                "source": "The source",
                "priority": "P1",
                "user": "Dracula",
                "note": "Here is a note",
            },
            id=f"{TESTS}: query parameters",
        ),
        pytest.param(
            f"opsgenie://api.opsgenie.com/{KEY}?alias=Life+is+too+short+for+no+alias"
            "&description=Every+alert+needs+a+description&actions=An+action"
            '&tags=["tag1","tag2"]&entity=An+example+entity&source=The+source&priority=P1'
            "&user=Dracula&note=Here+is+a+note",
            {
                "alias": "Life is too short for no alias",
                "actions": ["An action"],
                "tags": ["tag1", "tag2"],
                "entity": "An example entity",
                "priority": "P1",
                "note": "Here is a note",
            },
            id=f"{DOCS}: optional parameters",
        ),
        pytest.param(
            f"opsgenie://api.opsgenie.com/{KEY}?alias=Life is+too%20short+for+no+alias",
            {"alias": "Life is too short for no alias"},
            id=f"{TESTS}: differently escaped spaces",
        ),
        pytest.param(
            f"opsgenie://api.opsgenie.com/{KEY}?responders=team:{TEAM_ID},team:NOC,"
            f"user:Donald,user:{USER_ID}",
            {
                "responders": [
                    {"type": "team", "id": TEAM_ID},
                    {"type": "team", "name": "NOC"},
                    {"type": "user", "username": "Donald"},
                    {"type": "user", "id": USER_ID},
                ]
            },
            id=f"{TESTS}: responders by id and name",
        ),
        pytest.param(
            f'opsgenie://api.eu.opsgenie.com/{KEY}?tags=["tag1","tag2"]&description=testing'
            '&responders=[{"username":"superuser", "type": "user"}]&entity=Example Entity'
            '&source=Example Source&actions=["asdf", "bcde"]',
            {
                "endpoint": "https://api.eu.opsgenie.com/v2/alerts",
                "tags": ["tag1", "tag2"],
                "responders": [{"username": "superuser", "type": "user"}],
                "actions": ["asdf", "bcde"],
                "entity": "Example Entity",
                "source": "Example Source",
            },
            id=f"{DOCS}: command-line example with JSON values",
        ),
    ],
)
def test_url_good(url: str, expected: dict[str, Any]) -> None:
    fields = fields_of(url)
    assert {key: fields.get(key) for key in expected} == expected


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param(
            "opsgenie://api.opsgenie.com", "API key as its path", id="no key (opsgenie_config.go)"
        ),
        pytest.param(
            f"opsgenie://api.opsgenie.com/{KEY}?foo=bar", "unknown query key", id="unknown key"
        ),
        pytest.param(
            f"opsgenie://api.opsgenie.com/{KEY}?priority=P9", "P1 to P5", id="bad priority"
        ),
        pytest.param(
            f"opsgenie://api.opsgenie.com/{KEY}?responders=NOC",
            "not type:identifier",
            id="entity without type",
        ),
        pytest.param(
            f"opsgenie://api.opsgenie.com/{KEY}?responders=escalation:Night",
            "needs an id",
            id="escalation by name (opsgenie_entity.go)",
        ),
        pytest.param(
            f"opsgenie://api.opsgenie.com/{KEY}?details=oops", "key:value pairs", id="bad details"
        ),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_exact_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(202, json=ACCEPTED))
    url = f"opsgenie://api.opsgenie.com/{KEY}?responders=team:NOC&tags=ops&description=runbook+r1"
    async with mock_client(recorder) as client:
        result = await build(client, url).send(make_message())
    assert result.ok and result.status == 202
    request = recorder.last
    assert (request.method, str(request.url)) == ("POST", "https://api.opsgenie.com/v2/alerts")
    assert request.headers["authorization"] == f"GenieKey {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert recorder.json() == {
        "message": "capsule.create failed: capsule c1 (team-1)",
        "alias": "01HZX0000000000000000000AA",
        "description": "Outcome: error\nError: quota exceeded\nrunbook r1",
        "responders": [{"type": "team", "name": "NOC"}],
        "tags": ["ops"],
        "entity": "capsule:c1",
        "priority": "P2",
    }


@pytest.mark.parametrize(
    ("severity", "outcome", "priority"),
    [
        pytest.param("critical", "error", "P1", id="critical"),
        pytest.param(None, "error", "P2", id="error"),
        pytest.param("warning", None, "P3", id="warning"),
        pytest.param(None, "success", "P4", id="info"),
        pytest.param("debug", None, "P5", id="debug"),
    ],
)
async def test_priority_follows_the_severity(
    severity: str | None, outcome: str | None, priority: str
) -> None:
    extra = {"severity": severity} if severity else {}
    message = Message("t", "b", event=make_event(outcome, **extra), delivery_id="d")
    recorder = Recorder(lambda request: httpx.Response(202, json=ACCEPTED))
    async with mock_client(recorder) as client:
        await build(client, f"opsgenie:///{KEY}").send(message)
        await build(client, f"opsgenie:///{KEY}?priority=P5&alias=fixed").send(message)
    assert recorder.json(0)["priority"] == priority
    assert (recorder.json(1)["priority"], recorder.json(1)["alias"]) == ("P5", "fixed")


async def test_title_and_limits() -> None:
    recorder = Recorder(lambda request: httpx.Response(202, json=ACCEPTED))
    async with mock_client(recorder) as client:
        await build(client, f"opsgenie:///{KEY}").send(make_message(title="x" * 200))
        await build(client, f"opsgenie:///{KEY}?title=Disk+alert").send(make_message())
    assert len(recorder.json(0)["message"]) == 130
    assert recorder.json(1)["message"] == "Disk alert"


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after", "needle"),
    [
        pytest.param(
            httpx.Response(401, json={"message": "Key format is not valid!", "took": 0.0}),
            OutcomeClass.PERMANENT,
            None,
            "Key format is not valid!",
            id="bad-key",
        ),
        pytest.param(
            httpx.Response(
                422,
                json={
                    "message": "Request body is not processable.",
                    "errors": {"message": "Message can not be empty."},
                },
            ),
            OutcomeClass.PERMANENT,
            None,
            "Message can not be empty.",
            id="422",
        ),
        pytest.param(
            httpx.Response(429), OutcomeClass.RETRYABLE, None, "HTTP 429", id="429-no-hint"
        ),
        pytest.param(
            httpx.Response(429, headers={"Retry-After": "5"}),
            OutcomeClass.RATE_LIMITED,
            5.0,
            "HTTP 429",
            id="429-retry-after",
        ),
        pytest.param(httpx.Response(503), OutcomeClass.RETRYABLE, None, "HTTP 503", id="503"),
    ],
)
async def test_errors(
    answer: httpx.Response, outcome: OutcomeClass, retry_after: float | None, needle: str
) -> None:
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, f"opsgenie:///{KEY}").send(make_message())
    assert (result.outcome, result.retry_after) == (outcome, retry_after)
    assert needle in (result.error or "")
    assert KEY not in str(result)


async def test_api_base_override() -> None:
    recorder = Recorder(lambda request: httpx.Response(202, json=ACCEPTED))
    async with mock_client(recorder) as client:
        channel = build(client, f"opsgenie:///{KEY}", api_base="http://127.0.0.1:9")
        await channel.send(make_message())
    assert str(recorder.last.url) == "http://127.0.0.1:9/v2/alerts"


async def test_private_target_refused_without_allow_private() -> None:
    security = SecuritySettings()
    async with make_http_client(security, timeout=5) as http:
        channel = create_channel(
            spec(f"opsgenie://localhost:1/{KEY}"), ChannelDeps(http=http, security=security)
        )
        result = await channel.send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert "security.allow_private_targets" in (result.error or "")


def test_default_rate_limit() -> None:
    limiter = limiter_for(spec(f"opsgenie:///{KEY}"), "opsgenie")
    assert limiter is not None and limiter.describe() == "2/1s burst 10"


def test_urls_verify_masks_the_key() -> None:
    url = f"opsgenie://api.eu.opsgenie.com/{KEY}?responders=team:NOC"
    result = CliRunner().invoke(cli, ["urls", "verify", url])
    assert result.exit_code == 0, result.output
    assert "POST https://api.eu.opsgenie.com/v2/alerts" in result.stdout
    assert "Authorization: GenieKey ***" in result.stdout
    assert '"name": "NOC"' in result.stdout
    assert KEY not in result.stdout + result.stderr
