"""Signal (signal-cli REST API): shoutrrr's URL table, the request, errors, the guard.

Sources are paths in nicholas-fedor/shoutrrr: docs/services/chat/signal/index.md
(docs) and pkg/services/chat/signal/signal_test.go (tests).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.channels.base import ChannelDeps, OutcomeClass
from consumers.channels.registry import create_channel
from consumers.channels.signal import SignalChannel, parse_recipients
from consumers.outbound import make_http_client
from consumers.ratelimit import limiter_for
from eventbus.cli import cli
from eventbus.errors import ChannelConfigError
from eventbus.settings import SecuritySettings

from .support import Recorder, build, make_message, mock_client, spec

DOCS = "docs/services/chat/signal/index.md"
TESTS = "pkg/services/chat/signal/signal_test.go"
TOKEN = "sig-api-token-0123456789"
TEXT = "capsule.create failed: capsule c1 (team-1)\nOutcome: error\nError: quota exceeded"


def _fields(channel: Any) -> dict[str, Any]:
    assert isinstance(channel, SignalChannel)
    return {"base": channel.base, "source": channel.source, "recipients": channel.recipients}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "signal://localhost:8080/+1234567890/+0987654321",
            {"base": "https://localhost:8080", "recipients": ["+0987654321"]},
            id=f"{DOCS}: single phone number",
        ),
        pytest.param(
            "signal://localhost:8080/+1234567890/+0987654321/+1123456789/group.testgroup",
            {"recipients": ["+0987654321", "+1123456789", "group.testgroup"]},
            id=f"{DOCS}: multiple recipients",
        ),
        pytest.param(
            "signal://localhost:8080/+1234567890/group.abcdefghijklmnop=",
            {"recipients": ["group.abcdefghijklmnop="]},
            id=f"{DOCS}: group",
        ),
        pytest.param(
            "signal://localhost:8080/+1234567890/+0987654321?disabletls=yes",
            {"base": "http://localhost:8080"},
            id=f"{DOCS}: disabletls",
        ),
        pytest.param(
            "signal://localhost:8080/+1234567890/group.ABCD/EFGH=",
            {"recipients": ["group.ABCD/EFGH="]},
            id=f"{TESTS}: group id with / and =",
        ),
        pytest.param(
            "signal://localhost:8080/+1234567890/group.ABCD+EFGH",
            {"recipients": ["group.ABCD+EFGH"]},
            id=f"{TESTS}: group id with +",
        ),
        pytest.param(
            "signal://myserver:9999/+1234567890/+0987654321",
            {"base": "https://myserver:9999", "source": "+1234567890"},
            id=f"{TESTS}: custom host and port",
        ),
        pytest.param(
            "signal://myserver/+1234567890/+0987654321",
            {"base": "https://myserver:8080"},
            id=f"{TESTS}: default port",
        ),
        pytest.param(
            "signal://localhost:8080/+1234567890/+0987654321/group.testgroup",
            {"source": "+1234567890", "recipients": ["+0987654321", "group.testgroup"]},
            id=f"{TESTS}: valid url",
        ),
        pytest.param(
            "signal://localhost/+1234567890/+0987654321?Port=9000&DisableTLS=yes&TO=+111,+222",
            {"base": "http://localhost:9000", "recipients": ["111", "222"]},
            id="query keys are case-insensitive and override the path",
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
            "signal://localhost:8080", "source number and at least one", id=f"{TESTS}: no source"
        ),
        pytest.param(
            "signal://localhost:8080/+1234567890",
            "at least one recipient",
            id=f"{TESTS}: no recipients",
        ),
        pytest.param(
            "signal://localhost:8080/invalid-phone/+1234567890",
            "is not a phone number",
            id=f"{TESTS}: invalid phone number",
        ),
        pytest.param(
            "signal://localhost:8080/+1234567890/invalid.group!",
            "neither a phone number",
            id=f"{TESTS}: invalid group id",
        ),
        pytest.param(
            "signal://localhost:8080/+1234567890/+0987654321?foo=bar",
            "unknown query key",
            id=f"{TESTS}: invalid query key",
        ),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


@pytest.mark.parametrize(
    ("url", "authorization"),
    [
        pytest.param(
            "signal://user:pass@localhost:8080/+1234567890/+0987654321",
            "Basic dXNlcjpwYXNz",
            id=f"{DOCS}: with authentication",
        ),
        pytest.param(
            f"signal://localhost:8080/+1234567890/+0987654321?token={TOKEN}",
            f"Bearer {TOKEN}",
            id=f"{DOCS}: with API token",
        ),
        pytest.param(
            f"signal://user:pass@localhost:8080/+1234567890/+0987654321?apikey={TOKEN}",
            f"Bearer {TOKEN}",
            id=f"{DOCS}: the token wins over user and password",
        ),
        pytest.param(
            "signal://user@localhost:8080/+1234567890/+0987654321",
            "Basic dXNlcjo=",
            id=f"{TESTS}: user without password",
        ),
    ],
)
async def test_exact_request(url: str, authorization: str) -> None:
    recorder = Recorder(lambda request: httpx.Response(201, json={"timestamp": 1234567890}))
    async with mock_client(recorder) as client:
        result = await build(client, url).send(make_message())
    assert result.ok
    request = recorder.last
    assert (request.method, str(request.url)) == ("POST", "https://localhost:8080/v2/send")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == authorization
    assert recorder.json() == {
        "message": TEXT,
        "number": "+1234567890",
        "recipients": ["+0987654321"],
    }


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after"),
    [
        pytest.param(
            httpx.Response(400, json={"error": "Bad Request"}),
            OutcomeClass.PERMANENT,
            None,
            id="400",
        ),
        pytest.param(
            httpx.Response(401, text="Unauthorized"), OutcomeClass.PERMANENT, None, id="bad-token"
        ),
        pytest.param(httpx.Response(429), OutcomeClass.RETRYABLE, None, id="429-no-hint"),
        pytest.param(
            httpx.Response(429, headers={"Retry-After": "12"}),
            OutcomeClass.RATE_LIMITED,
            12.0,
            id="429-retry-after",
        ),
        pytest.param(
            httpx.Response(500, json={"error": "boom"}), OutcomeClass.RETRYABLE, None, id="500"
        ),
    ],
)
async def test_errors(
    answer: httpx.Response, outcome: OutcomeClass, retry_after: float | None
) -> None:
    async with mock_client(Recorder(lambda request: answer)) as client:
        url = f"signal://localhost:8080/+1234567890/+0987654321?token={TOKEN}"
        result = await build(client, url).send(make_message())
    assert (result.outcome, result.retry_after) == (outcome, retry_after)
    assert TOKEN not in str(result)


async def test_api_base_override() -> None:
    recorder = Recorder(lambda request: httpx.Response(201, json={"timestamp": 1}))
    async with mock_client(recorder) as client:
        url = "signal://signal.example.com/+1234567890/+0987654321"
        await build(client, url, api_base="http://127.0.0.1:9/base/").send(make_message())
    assert str(recorder.last.url) == "http://127.0.0.1:9/base/v2/send"


async def test_private_target_refused_without_allow_private() -> None:
    security = SecuritySettings()
    async with make_http_client(security, timeout=5) as http:
        channel = create_channel(
            spec("signal://127.0.0.1:8080/+1234567890/+0987654321?disabletls=yes"),
            ChannelDeps(http=http, security=security),
        )
        result = await channel.send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert "security.allow_private_targets" in (result.error or "")


def test_default_rate_limit() -> None:
    limiter = limiter_for(spec("signal://h/+1/+2"), "signal")
    assert limiter is not None and limiter.describe() == "1/1s burst 5"


def test_urls_verify_masks_the_token() -> None:
    url = f"signal://localhost:8080/+1234567890/+0987654321?token={TOKEN}"
    result = CliRunner().invoke(cli, ["urls", "verify", url])
    assert result.exit_code == 0, result.output
    assert "POST https://localhost:8080/v2/send" in result.stdout
    assert "Authorization: Bearer ***" in result.stdout
    assert '"number": "+1234567890"' in result.stdout
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("severity", "first_line"),
    [
        pytest.param(None, "capsule.create failed: capsule c1 (team-1)", id="none"),
        pytest.param("info", "capsule.create failed: capsule c1 (team-1)", id="info"),
        pytest.param(
            "critical", "[CRITICAL] capsule.create failed: capsule c1 (team-1)", id="critical"
        ),
    ],
)
async def test_the_severity_tags_the_title_and_the_link_follows(
    severity: str | None, first_line: str
) -> None:
    recorder = Recorder(lambda request: httpx.Response(201, json={"timestamp": 1}))
    async with mock_client(recorder) as client:
        message = make_message(severity=severity, link="https://ops.example.com/c1")
        await build(client, "signal://h/+1234567890/+0987654321").send(message)
    lines = recorder.json()["message"].split("\n")
    assert (lines[0], lines[-1]) == (first_line, "https://ops.example.com/c1")


_PHONES = st.from_regex(r"\+[0-9]{6,14}", fullmatch=True)
# base64 ids; a segment after a '/' never starts with '+' (that would be a number)
_GROUPS = st.from_regex(
    r"group\.[A-Za-z0-9+=_-]{1,12}(/[A-Za-z0-9=_-][A-Za-z0-9+=_-]{0,7}){0,2}", fullmatch=True
)


@settings(deadline=None)
@given(st.lists(st.one_of(_PHONES, _GROUPS), min_size=1, max_size=6))
def test_recipients_split_over_path_segments_come_back_whole(recipients: list[str]) -> None:
    # a group id's '/' makes it span segments; the next '+number' or 'group.' ends it
    segments = [segment for recipient in recipients for segment in recipient.split("/")]
    assert parse_recipients(segments) == recipients
