"""Mattermost incoming webhooks."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.mattermost import MattermostChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client


@pytest.mark.parametrize(
    ("url", "base", "channel"),
    [
        pytest.param(
            "mattermost://mm.example.com/hooktoken123", "https://mm.example.com", None, id="plain"
        ),
        pytest.param(
            "mattermost://bot@mm.example.com:8065/hooktoken123/town-square?disabletls=yes",
            "http://mm.example.com:8065",
            "town-square",
            id="user-port-channel",
        ),
    ],
)
def test_url_good(url: str, base: str, channel: str | None) -> None:
    built = build(httpx.AsyncClient(), url)
    assert isinstance(built, MattermostChannel) and (built.base, built.channel) == (base, channel)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("mattermost://mm.example.com", id="no-token"),
        pytest.param("mattermost://h/a/b/c", id="too-deep"),
    ],
)
def test_url_bad(url: str) -> None:
    with pytest.raises(ChannelConfigError, match=r"mattermost://host/TOKEN"):
        build(httpx.AsyncClient(), url)


async def test_exact_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, text="ok"))
    async with mock_client(recorder) as client:
        await build(
            client, "mattermost://bot@mm/hooktoken123/ops?icon=https://i.example/a.png"
        ).send(make_message())
    assert str(recorder.last.url) == "https://mm/hooks/hooktoken123"
    assert recorder.json() == {
        "text": "**capsule.create failed: capsule c1 (team-1)**",
        "attachments": [
            {
                "color": "#E74C3C",
                "text": "Outcome: error\nError: quota exceeded",
                "fallback": "capsule.create failed: capsule c1 (team-1)\n"
                "Outcome: error\nError: quota exceeded",
            }
        ],
        "username": "bot",
        "channel": "ops",
        "icon_url": "https://i.example/a.png",
    }
