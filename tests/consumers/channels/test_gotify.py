"""Gotify: URL table, the token in a header, priority by severity."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.base import OutcomeClass
from consumers.channels.gotify import GotifyChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client

TOKEN = "AJFh0x8Y3l6fEc2"


@pytest.mark.parametrize(
    ("url", "base"),
    [
        pytest.param(
            f"gotify://gotify.example.com/{TOKEN}", "https://gotify.example.com", id="plain"
        ),
        pytest.param(
            f"gotify://gotify.example.com:8443/sub/path/{TOKEN}?priority=2",
            "https://gotify.example.com:8443/sub/path",
            id="port-subpath",
        ),
        pytest.param(f"gotify://h/{TOKEN}?DisableTLS=yes", "http://h", id="disabletls"),
    ],
)
def test_url_good(url: str, base: str) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, GotifyChannel) and channel.base == base


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("gotify://host", "no application token", id="no-token"),
        pytest.param("gotify://host/a", "does not look like", id="short-token"),
        pytest.param(f"gotify://h/{TOKEN}?priority=11", "-2 to 10", id="bad-priority"),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_exact_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"id": 1}))
    async with mock_client(recorder) as client:
        result = await build(client, f"gotify://h/{TOKEN}").send(
            make_message(link="https://l.example")
        )
    assert result.ok
    assert str(recorder.last.url) == "https://h/message"
    assert recorder.last.headers["x-gotify-key"] == TOKEN
    assert TOKEN not in str(recorder.last.url)
    assert recorder.json() == {
        "title": "capsule.create failed: capsule c1 (team-1)",
        "message": "Outcome: error\nError: quota exceeded",
        "priority": 8,
        "extras": {
            "client::display": {"contentType": "text/plain"},
            "client::notification": {"click": {"url": "https://l.example"}},
        },
    }


async def test_unauthorized_is_permanent() -> None:
    answer = httpx.Response(401, json={"error": "Unauthorized", "errorCode": 401})
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, f"gotify://h/{TOKEN}").send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
