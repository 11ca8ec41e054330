"""ntfy: URL table, headers by severity, token and basic auth."""

from __future__ import annotations

import base64

import httpx
import pytest

from consumers.channels.base import OutcomeClass
from consumers.channels.ntfy import NtfyChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        pytest.param("ntfy://ntfy.sh/alerts", "https://ntfy.sh/alerts", id="public"),
        pytest.param(
            "ntfy://user:pass@ntfy.example.com:8080/alerts?scheme=http",
            "http://ntfy.example.com:8080/alerts",
            id="basic-auth-http",
        ),
        pytest.param("ntfy://:tk_abcdef@host/sub/alerts", "https://host/sub/alerts", id="token"),
        pytest.param("ntfy:///alerts", "https://ntfy.sh/alerts", id="default-host"),
    ],
)
def test_url_good(url: str, endpoint: str) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, NtfyChannel)
    assert f"{channel.base}/{channel.topic}" == endpoint


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("ntfy://ntfy.sh", "no topic", id="no-topic"),
        pytest.param("ntfy://h/t?priority=9", "priority", id="bad-priority"),
        pytest.param("ntfy://h/t?scheme=ftp", "http or https", id="bad-scheme"),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_exact_request_by_outcome() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"id": "x"}))
    async with mock_client(recorder) as client:
        channel = build(
            client, "ntfy://:tk_secret123@ntfy.example.com/alerts?click=https://c.example"
        )
        await channel.send(make_message(title="Überlauf", link="https://x.example"))
        await channel.send(make_message(outcome="success", body="fine"))
    first, second = recorder.requests
    assert first.method == "POST" and str(first.url) == "https://ntfy.example.com/alerts"
    assert first.content == b"Outcome: error\nError: quota exceeded"
    assert first.headers["authorization"] == "Bearer tk_secret123"
    assert first.headers["title"].startswith("=?utf-8?")  # RFC 2047 for non-ASCII
    assert first.headers["priority"] == "4" and first.headers["tags"] == "rotating_light"
    assert first.headers["click"] == "https://c.example"
    assert second.headers["priority"] == "3" and second.headers["tags"] == "white_check_mark"


async def test_basic_auth_and_fixed_priority() -> None:
    recorder = Recorder(lambda request: httpx.Response(200))
    async with mock_client(recorder) as client:
        await build(client, "ntfy://bob:pw%40x@h/t?priority=max&tags=a,b&markdown=yes").send(
            make_message()
        )
    headers = recorder.last.headers
    assert headers["authorization"] == "Basic " + base64.b64encode(b"bob:pw@x").decode()
    assert (headers["priority"], headers["tags"], headers["markdown"]) == ("5", "a,b", "yes")


async def test_errors() -> None:
    async with mock_client(
        Recorder(lambda request: httpx.Response(403, json={"error": "forbidden"}))
    ) as client:
        result = await build(client, "ntfy://:tk_secret123@h/t").send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT and "tk_secret123" not in repr(result)
