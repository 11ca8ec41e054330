"""Google Chat space webhooks."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.googlechat import GoogleChatChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client

URL = "googlechat://chat.googleapis.com/v1/spaces/FOO/messages?key=KEYsecret1&token=TOKsecret2"


def test_url_good() -> None:
    channel = build(httpx.AsyncClient(), URL)
    assert isinstance(channel, GoogleChatChannel)
    assert "secret" not in channel.describe()


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param(
            "googlechat://chat.googleapis.com/v1/spaces/FOO/messages?key=k",
            "both key",
            id="no-token",
        ),
        pytest.param(
            "googlechat://chat.googleapis.com/v1/FOO?key=k&token=t", "path must be", id="bad-path"
        ),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_exact_request_and_override() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"name": "spaces/FOO/messages/1"}))
    async with mock_client(recorder) as client:
        await build(client, URL, api_base="http://127.0.0.1:7").send(make_message())
    request = recorder.last
    assert str(request.url) == (
        "http://127.0.0.1:7/v1/spaces/FOO/messages?key=KEYsecret1&token=TOKsecret2"
    )
    assert recorder.json() == {
        "text": "*capsule.create failed: capsule c1 (team-1)*\n"
        "Outcome: error\nError: quota exceeded"
    }
