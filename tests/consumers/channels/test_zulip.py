"""Zulip bots: shoutrrr's URL table, the request, errors, ignored keys, the guard.

Sources are paths in nicholas-fedor/shoutrrr: docs/services/chat/zulip/index.md
(docs), pkg/services/chat/zulip/zulip_config_test.go (config tests) and
pkg/services/chat/zulip/zulip_service_test.go (service tests).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from click.testing import CliRunner

from consumers.channels.base import ChannelDeps, OutcomeClass
from consumers.channels.registry import channel_warnings, create_channel
from consumers.channels.zulip import ZulipChannel
from consumers.outbound import make_http_client
from consumers.ratelimit import limiter_for
from eventbus.cli import cli
from eventbus.errors import ChannelConfigError
from eventbus.settings import SecuritySettings

from .support import Recorder, build, make_message, mock_client, spec

DOCS = "docs/services/chat/zulip/index.md"
CONFIG = "pkg/services/chat/zulip/zulip_config_test.go"
SERVICE = "pkg/services/chat/zulip/zulip_service_test.go"
KEY = "correcthorsebatterystable"
BOT = f"my-bot%40zulipchat.com:{KEY}@example.zulipchat.com"
TITLE = "capsule.create failed: capsule c1 (team-1)"
BODY = "Outcome: error\nError: quota exceeded"


def form(recorder: Recorder) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(recorder.last.content.decode()).items()}


def _fields(channel: Any) -> dict[str, Any]:
    assert isinstance(channel, ZulipChannel)
    return {
        "base": channel.base,
        "stream": channel.stream,
        "topic": channel.topic,
        "title": channel.title,
        "direct_to": channel.direct_to,
        "read_by_sender": channel.read_by_sender,
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            f"zulip://{BOT}?stream=alerts&topic=monitoring",
            {"base": "https://example.zulipchat.com", "stream": "alerts", "topic": "monitoring"},
            id=f"{DOCS}: stream and topic",
        ),
        pytest.param(
            f"zulip://{BOT}:8443?stream=general",
            {"base": "https://example.zulipchat.com:8443", "stream": "general"},
            id=f"{DOCS}: custom port",
        ),
        pytest.param(
            "zulip://bot%40example.com:api-key@zulip.example.com?stream=alerts",
            {"base": "https://zulip.example.com", "stream": "alerts"},
            id=f"{DOCS}: CLI example",
        ),
        pytest.param(
            f"zulip://{BOT}?type=direct&to=user1@example.com,user2@example.com",
            {"direct_to": ["user1@example.com", "user2@example.com"]},
            id=f"{DOCS}: direct message",
        ),
        pytest.param(
            "zulip://bot%40example.com:secret-key@zulip.example.com"
            "?type=direct&to=user1@example.com,user2@example.com&read_by_sender=true",
            {"direct_to": ["user1@example.com", "user2@example.com"], "read_by_sender": True},
            id=f"{CONFIG}: direct message fields",
        ),
        pytest.param(
            "zulip://bot%40example.com:secret-key@zulip.example.com?type=channel&stream=general",
            {"stream": "general", "read_by_sender": False},
            id=f"{CONFIG}: read_by_sender defaults to false",
        ),
        pytest.param(
            "zulip://bot%40example.com:secret-key@zulip.example.com:443",
            None,
            id=f"{CONFIG}: standard port (no stream: refused, see test_url_bad)",
        ),
        pytest.param(
            f"zulip://{BOT}?STREAM=ops&Title=Deploys",
            {"stream": "ops", "title": "Deploys", "topic": ""},
            id="keys are case-insensitive",
        ),
    ],
)
def test_url_good(url: str, expected: dict[str, Any] | None) -> None:
    if expected is None:
        url += "?stream=s"  # the same URL with the stream it needs
        expected = {"base": "https://zulip.example.com:443"}
    fields = _fields(build(httpx.AsyncClient(), url))
    assert {key: fields[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param(
            "zulip://:secret-key@zulip.example.com?stream=s",
            "no bot e-mail",
            id=f"{CONFIG}: no bot mail",
        ),
        pytest.param(
            "zulip://bot%40example.com@zulip.example.com?stream=s",
            "no API key",
            id=f"{CONFIG}: no API key",
        ),
        pytest.param(
            "zulip://bot%40example.com:secret-key@?stream=s", "no host", id=f"{CONFIG}: no host"
        ),
        pytest.param(
            # Go accepts the unencoded '@' of the bot e-mail; our shared URL parser asks
            # for %40 (as shoutrrr's docs do) rather than guessing which '@' ends the user.
            "zulip://bot@example.com:secret-key@zulip.example.com?stream=general",
            "percent-encode '@' as %40",
            id=f"{CONFIG}: unencoded @ in the bot e-mail",
        ),
        pytest.param(
            f"zulip://{BOT}",
            "no stream",
            id=f"{DOCS}: basic notification (shoutrrr fails it at send: no recipient)",
        ),
        pytest.param(
            f"zulip://{BOT}?stream=s&type=private",
            "type 'private' is not valid",
            id=f"{SERVICE}: invalid type",
        ),
        pytest.param(
            f"zulip://{BOT}?type=direct", "no recipients", id=f"{SERVICE}: direct without recipient"
        ),
        pytest.param(
            f"zulip://my-bot%40z.com:{KEY}@10.0.0.1?stream=s",
            "not a DNS name",
            id=f"{SERVICE}: invalid host",
        ),
        pytest.param(
            f"zulip://{BOT}?stream=s&topic={'x' * 61}",
            "Zulip allows 60",
            id=f"{SERVICE}: topic too long",
        ),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(
            "stream=alerts",
            {"type": "stream", "to": "alerts", "topic": TITLE, "content": BODY},
            id="title-as-topic",
        ),
        pytest.param(
            "stream=alerts&topic=monitoring",
            {
                "type": "stream",
                "to": "alerts",
                "topic": "monitoring",
                "content": f"{TITLE}\n{BODY}",
            },
            id="topic",
        ),
        pytest.param(
            "stream=alerts&title=Deploys",
            {"type": "stream", "to": "alerts", "topic": "Deploys", "content": f"{TITLE}\n{BODY}"},
            id=f"{SERVICE}: title as topic when no topic",
        ),
        pytest.param(
            "stream=alerts&topic=t&title=Deploys",
            {
                "type": "stream",
                "to": "alerts",
                "topic": "t",
                "content": f"Deploys\n\n{TITLE}\n{BODY}",
            },
            id=f"{SERVICE}: title prepended when topic and title",
        ),
        pytest.param(
            "type=direct&to=a@example.com,b@example.com&read_by_sender=yes",
            {
                "type": "direct",
                "to": json.dumps(["a@example.com", "b@example.com"]),
                "content": BODY,
                "read_by_sender": "true",
            },
            id=f"{SERVICE}: direct message with to as JSON",
        ),
    ],
)
async def test_exact_request(query: str, expected: dict[str, str]) -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"result": "success", "id": 42}))
    async with mock_client(recorder) as client:
        result = await build(client, f"zulip://{BOT}?{query}").send(make_message())
    assert result.ok
    request = recorder.last
    assert (request.method, str(request.url)) == (
        "POST",
        "https://example.zulipchat.com/api/v1/messages",
    )
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"].startswith("Basic ")
    assert form(recorder) == expected


async def test_long_title_is_cut_to_the_topic_limit() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"result": "success"}))
    async with mock_client(recorder) as client:
        await build(client, f"zulip://{BOT}?stream=s").send(make_message(title="t" * 100))
    assert len(form(recorder)["topic"]) == 60


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after", "needle"),
    [
        pytest.param(
            httpx.Response(
                401, json={"result": "error", "msg": "Invalid API key", "code": "INVALID_API_KEY"}
            ),
            OutcomeClass.PERMANENT,
            None,
            "Invalid API key (INVALID_API_KEY)",
            id="bad-key",
        ),
        pytest.param(
            httpx.Response(
                400,
                json={
                    "result": "error",
                    "msg": "Stream 'x' does not exist",
                    "code": "STREAM_DOES_NOT_EXIST",
                },
            ),
            OutcomeClass.PERMANENT,
            None,
            "does not exist",
            id="no-stream",
        ),
        pytest.param(
            httpx.Response(
                429,
                json={
                    "result": "error",
                    "code": "RATE_LIMIT_HIT",
                    "msg": "API usage exceeded rate limit",
                    "retry-after": 28.5,
                },
            ),
            OutcomeClass.RATE_LIMITED,
            28.5,
            "rate limit",
            id="429-json-retry-after",
        ),
        pytest.param(
            httpx.Response(429, headers={"Retry-After": "7"}),
            OutcomeClass.RATE_LIMITED,
            7.0,
            "429",
            id="429-header",
        ),
        pytest.param(httpx.Response(429), OutcomeClass.RETRYABLE, None, "429", id="429-no-hint"),
        pytest.param(
            httpx.Response(503, text="down"), OutcomeClass.RETRYABLE, None, "503", id="503"
        ),
    ],
)
async def test_errors(
    answer: httpx.Response, outcome: OutcomeClass, retry_after: float | None, needle: str
) -> None:
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, f"zulip://{BOT}?stream=s").send(make_message())
    assert (result.outcome, result.retry_after) == (outcome, retry_after)
    assert needle in (result.error or "")
    assert KEY not in str(result)


async def test_api_base_override() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"result": "success"}))
    async with mock_client(recorder) as client:
        channel = build(client, f"zulip://{BOT}?stream=s", api_base="http://127.0.0.1:9")
        await channel.send(make_message())
    assert str(recorder.last.url) == "http://127.0.0.1:9/api/v1/messages"


async def test_private_target_refused_without_allow_private() -> None:
    security = SecuritySettings()
    async with make_http_client(security, timeout=5) as http:
        channel = create_channel(
            spec(f"zulip://{BOT}?stream=s", api_base="http://127.0.0.1:1"),
            ChannelDeps(http=http, security=security),
        )
        result = await channel.send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert "security.allow_private_targets" in (result.error or "")


def test_unknown_keys_are_accepted_and_reported() -> None:
    url = f"zulip://{BOT}?stream=s&colour=red"
    assert isinstance(build(httpx.AsyncClient(), url), ZulipChannel)
    (warning,) = channel_warnings(spec(url, name="chat"))
    assert "'colour'" in warning and "ignored" in warning
    assert channel_warnings(spec(f"zulip://{BOT}?stream=s")) == []


def test_default_rate_limit_stays_under_200_a_minute() -> None:
    limiter = limiter_for(spec(f"zulip://{BOT}?stream=s"), "zulip")
    assert limiter is not None and limiter.channel_spec is not None
    bucket = limiter.channel_spec
    assert bucket.burst + bucket.rate * 60 / bucket.per <= 200


def test_urls_verify_masks_the_key() -> None:
    result = CliRunner().invoke(cli, ["urls", "verify", f"zulip://{BOT}?stream=alerts"])
    assert result.exit_code == 0, result.output
    assert "POST https://example.zulipchat.com/api/v1/messages" in result.stdout
    assert "Authorization: Basic ***" in result.stdout
    assert '"to": "alerts"' in result.stdout
    assert KEY not in result.stdout + result.stderr


async def test_the_severity_tags_the_topic_or_the_content() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"result": "success"}))
    async with mock_client(recorder) as client:
        message = make_message(severity="error")
        await build(client, f"zulip://{BOT}?stream=s").send(message)
        await build(client, f"zulip://{BOT}?stream=s&topic=ops").send(message)
    first, second = (
        {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        for request in recorder.requests
    )
    assert first["topic"] == f"[ERROR] {TITLE}"
    assert second["topic"] == "ops" and second["content"].startswith(f"[ERROR] {TITLE}\n")
