"""Pushover: URL table, the form request, errors from the JSON body."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.base import OutcomeClass
from consumers.channels.pushover import PushoverChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client

APP = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
USER = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"


def test_url_good() -> None:
    channel = build(httpx.AsyncClient(), f"pushover://shoutrrr:{APP}@{USER}/?devices=phone,tablet")
    assert isinstance(channel, PushoverChannel)
    assert channel.devices == ["phone", "tablet"]
    assert USER not in channel.describe() and APP not in channel.describe()


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param(f"pushover://{USER}/", "no API token", id="no-token"),
        pytest.param(f"pushover://shoutrrr:{APP}@/", "no user key", id="no-user"),
        pytest.param(f"pushover://shoutrrr:{APP}@{USER}/?priority=5", "-2 to 2", id="priority"),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_exact_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"status": 1, "request": "x"}))
    async with mock_client(recorder) as client:
        channel = build(
            client,
            f"pushover://shoutrrr:{APP}@{USER}/?devices=phone",
            api_base="http://127.0.0.1:9",
        )
        await channel.send(make_message(body="b" * 2000, link="https://l.example"))
    request = recorder.last
    assert str(request.url) == "http://127.0.0.1:9/1/messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form["token"] == APP and form["user"] == USER and form["device"] == "phone"
    assert form["priority"] == "1" and form["url"] == "https://l.example"
    assert len(form["message"]) == 1024 and form["message"].endswith("\u2026")


async def test_errors_from_body() -> None:
    answer = httpx.Response(
        400, json={"user": "invalid", "errors": ["user identifier is invalid"], "status": 0}
    )
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, f"pushover://shoutrrr:{APP}@{USER}/").send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert "user identifier is invalid" in (result.error or "")
