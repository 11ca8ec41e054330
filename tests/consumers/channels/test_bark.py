"""Bark: shoutrrr's URLs (each case cites its source in nicholas-fedor/shoutrrr),
the exact request, and what the server's answers mean."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.bark import BarkChannel
from consumers.channels.base import OutcomeClass
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client

TEST = "pkg/services/push/bark/bark_test.go"
CONFIG = "pkg/services/push/bark/bark_config.go"


@pytest.mark.parametrize(
    ("url", "endpoint", "fields"),
    [
        pytest.param(
            "bark://:devicekey@hostname",
            "https://hostname/push",
            {"badge": 0},
            id=f"{TEST}: only required fields, defaults",
        ),
        pytest.param(
            "bark://:device-key@example.com:2225/?badge=5&category=CAT&group=GROUP"
            "&scheme=http&title=TITLE&url=URL",
            "http://example.com:2225/push",
            {"badge": 5, "category": "CAT", "group": "GROUP", "url": "URL"},
            id=f"{TEST}: every field de-/serialized",
        ),
        pytest.param(
            "bark://:k@host/path/?Sound=alarm&ICON=https://i.example/a.png&copy=c",
            "https://host/path/push",
            {"sound": "alarm", "icon": "https://i.example/a.png", "copy": "c", "badge": 0},
            id=f"{CONFIG}: server path, keys case-insensitive",
        ),
        pytest.param(
            "bark://:k@host?badge=0x10",
            "https://host/push",
            {"badge": 16},
            id=f"{CONFIG}: badge int64 read with Go's number prefixes",
        ),
    ],
)
def test_shoutrrr_urls(url: str, endpoint: str, fields: dict[str, object]) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, BarkChannel) and channel.endpoint == endpoint
    [request] = channel.plan(make_message())
    assert {key: request.json[key] for key in fields} == fields


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("bark://:mock-device@host/?foo=bar", "unknown query key", id=f"{TEST}: foo"),
        pytest.param("bark://hostname", "device key is missing", id=f"{CONFIG}: no device key"),
        pytest.param("bark://:key@", "bark host is missing", id=f"{CONFIG}: no host"),
        pytest.param("bark://:k@h?badge=many", "whole number", id=f"{CONFIG}: badge not int"),
        pytest.param(
            "bark://:k@h?scheme=ftp",
            "use http or https",
            id="stricter than shoutrrr: a scheme no request could use",
        ),
    ],
)
def test_refused(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_exact_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"code": 200, "message": "ok"}))
    async with mock_client(recorder) as client:
        channel = build(client, "bark://:devkey123@bark.example.com/p?title=Ops&sound=bell")
        result = await channel.send(make_message(link="https://l.example/c1"))
    assert result.ok, result.error
    request = recorder.last
    assert request.method == "POST"
    assert str(request.url) == "https://bark.example.com/p/push"
    assert request.headers["content-type"] == "application/json"
    assert recorder.json() == {
        "body": "Outcome: error\nError: quota exceeded",
        "device_key": "devkey123",
        "title": "Ops: capsule.create failed: capsule c1 (team-1)",
        "badge": 0,
        "sound": "bell",
        "url": "https://l.example/c1",
    }


async def test_api_base_replaces_scheme_and_host() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"code": 200}))
    async with mock_client(recorder) as client:
        channel = build(client, "bark://:k@api.day.app/sub", api_base="http://127.0.0.1:9")
        assert (await channel.send(make_message())).ok
    assert str(recorder.last.url) == "http://127.0.0.1:9/sub/push"


@pytest.mark.parametrize(
    ("status", "body", "outcome", "needle"),
    [
        pytest.param(
            400,
            {"code": 400, "message": "failed to get device token: device not registered"},
            OutcomeClass.PERMANENT,
            "device not registered",
            id="bad-device-key",
        ),
        pytest.param(
            500,
            {"code": 500, "message": "someone turned off the internet"},
            OutcomeClass.RETRYABLE,
            "turned off",
            id=f"{TEST}: server error",
        ),
        pytest.param(
            200,
            {"code": 500, "message": "For some reason, the response code and HTTP code differ"},
            OutcomeClass.RETRYABLE,
            "code 500",
            id=f"{TEST}: 200 with another code",
        ),
        pytest.param(
            200, {"code": 400, "message": "x"}, OutcomeClass.PERMANENT, "code 400", id="200-400"
        ),
        pytest.param(429, {"code": 429}, OutcomeClass.RETRYABLE, "429", id="rate-limited"),
    ],
)
async def test_answers(status: int, body: object, outcome: OutcomeClass, needle: str) -> None:
    answer = httpx.Response(status, json=body)
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, "bark://:devkey123@h").send(make_message())
    assert result.outcome is outcome
    assert needle in (result.error or "")
    assert "devkey123" not in (result.error or "")


async def test_429_with_retry_after_is_rate_limited() -> None:
    answer = httpx.Response(429, headers={"Retry-After": "12"}, json={"code": 429})
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, "bark://:k@h").send(make_message())
    assert result.outcome is OutcomeClass.RATE_LIMITED and result.retry_after == 12
