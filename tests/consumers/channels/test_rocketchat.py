"""Rocket.Chat: shoutrrr's URLs (each case cites its source in
nicholas-fedor/shoutrrr), the webhook request, the answers, the ignored query."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from consumers.channels.base import OutcomeClass
from consumers.channels.registry import channel_warnings
from consumers.channels.rocketchat import RocketchatChannel
from eventbus.errors import ChannelConfigError
from tests.eventbus.cli_support import run

from .support import Recorder, build, make_message, mock_client, spec

TEST = "pkg/services/chat/rocketchat/rocketchat_test.go"
DOC = "docs/services/chat/rocketchat/index.md"
TOKEN = "8eGdRzc9r4YYNyvge/2XYQcX9NBwJBKfQnphpebPcnXZcPEi32Nt4NKJfrnbhsbRfX"


@pytest.mark.parametrize(
    ("url", "base", "username", "channel"),
    [
        pytest.param(
            "rocketchat://testUser@rocketchat.my-domain.com:5055/tokenA/tokenB/#testChannel",
            "https://rocketchat.my-domain.com:5055",
            "testUser",
            "#testChannel",
            id=f"{TEST}: valid URL",
        ),
        pytest.param(
            "rocketchat://rocketchat.my-domain.com/tokenA/tokenB/@user",
            "https://rocketchat.my-domain.com",
            "",
            "@user",
            id=f"{TEST}: channel starting with @",
        ),
        pytest.param(
            "rocketchat://rocketchat.my-domain.com/tokenA/tokenB/general",
            "https://rocketchat.my-domain.com",
            "",
            "#general",
            id=f"{TEST}: channel without fragment",
        ),
        pytest.param(
            f"rocketchat://your-domain.com/{TOKEN}",
            "https://your-domain.com",
            "",
            "",
            id=f"{DOC}: webhook token",
        ),
        pytest.param(
            f"rocketchat://shoutrrrUser@your-domain.com/{TOKEN}/shoutrrrChannel",
            "https://your-domain.com",
            "shoutrrrUser",
            "#shoutrrrChannel",
            id=f"{DOC}: sender and channel",
        ),
        pytest.param(
            f"rocketchat://shoutrrrUser@your-domain.com/{TOKEN}/@shoutrrrReceiver",
            "https://your-domain.com",
            "shoutrrrUser",
            "@shoutrrrReceiver",
            id=f"{DOC}: sender and receiver",
        ),
    ],
)
def test_shoutrrr_urls(url: str, base: str, username: str, channel: str) -> None:
    built = build(httpx.AsyncClient(), url)
    assert isinstance(built, RocketchatChannel)
    assert (built.base, built.username, built.channel) == (base, username, channel)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param(
            "rocketchat://rocketchat.my-domain.com",
            "does not include enough arguments",
            id=f"{TEST}: missing tokens",
        ),
        pytest.param(
            "rocketchat://h/tokenA",
            "does not include enough arguments",
            id="pkg/services/chat/rocketchat/rocketchat_config.go: MinPathParts",
        ),
        pytest.param("rocketchat:///a/b", "no host", id="no host"),
        pytest.param("rocketchat://h/a/b/#c?x=1", "query after", id="query after the fragment"),
    ],
)
def test_refused(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_exact_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"success": True}))
    async with mock_client(recorder) as client:
        channel = build(client, "rocketchat://bot@chat.example.com:3000/tokA/tokB/ops")
        result = await channel.send(make_message(link="https://l.example/c1"))
    assert result.ok, result.error
    request = recorder.last
    assert request.method == "POST"
    assert str(request.url) == "https://chat.example.com:3000/hooks/tokA/tokB"
    assert request.headers["content-type"] == "application/json"
    assert recorder.json() == {
        "text": "*capsule.create failed: capsule c1 (team-1)*\n"
        "Outcome: error\nError: quota exceeded\nhttps://l.example/c1",
        "username": "bot",
        "channel": "#ops",
    }


async def test_api_base() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"success": True}))
    async with mock_client(recorder) as client:
        channel = build(client, "rocketchat://chat.example.com/a/b", api_base="http://127.0.0.1:9")
        assert (await channel.send(make_message())).ok
    assert str(recorder.last.url) == "http://127.0.0.1:9/hooks/a/b"
    assert "username" not in recorder.json() and "channel" not in recorder.json()


@pytest.mark.parametrize(
    ("status", "body", "outcome", "needle"),
    [
        pytest.param(
            404,
            {"success": False, "error": "Invalid integration id or token provided."},
            OutcomeClass.PERMANENT,
            "Invalid integration id or token",
            id="bad-token",
        ),
        pytest.param(
            400,
            {"success": False, "error": "bad request"},
            OutcomeClass.PERMANENT,
            "400",
            id=f"{TEST}: failure",
        ),
        pytest.param(429, {}, OutcomeClass.RETRYABLE, "429", id="rate-limited"),
        pytest.param(502, {}, OutcomeClass.RETRYABLE, "502", id="server-error"),
    ],
)
async def test_answers(status: int, body: object, outcome: OutcomeClass, needle: str) -> None:
    answer = httpx.Response(status, json=body)
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, "rocketchat://h/tokA/T0KENSECRET").send(make_message())
    assert result.outcome is outcome and needle in (result.error or "")
    assert "T0KENSECRET" not in (result.error or "")


def test_query_keys_are_accepted_with_a_warning() -> None:
    # shoutrrr's rocketchat config has no query keys and never reads the query
    url = "rocketchat://h/a/b?title=x&Avatar=y"
    assert isinstance(build(httpx.AsyncClient(), url), RocketchatChannel)
    [warning] = channel_warnings(spec(url))
    assert "'avatar', 'title'" in warning and "no effect" in warning
    assert channel_warnings(spec("rocketchat://h/a/b")) == []


def test_config_check_shows_the_warning(tmp_path: Path) -> None:
    path = tmp_path / "eventbus.yaml"
    path.write_text(
        "channels:\n  - name: rc\n    url: rocketchat://h.example.com/tokA/S3CRETB?title=x\n"
    )
    result = run("--config", str(path), "config", "check")
    assert result.exit_code == 0, result.output
    assert "warning: rocketchat channel 'rc': query key(s) 'title' have no effect" in result.output
    assert "S3CRETB" not in result.output
