"""Join: shoutrrr's URLs (each case cites its source in nicholas-fedor/shoutrrr),
the query-string request, and Join's verdict in a 200 body."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.base import OutcomeClass
from consumers.channels.join import JoinChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client

TEST = "pkg/services/push/join/join_test.go"
DOC = "docs/services/push/join/index.md"


@pytest.mark.parametrize(
    ("url", "devices", "icon"),
    [
        pytest.param(
            "join://Token:apikey@join?devices=dev1%2Cdev2&icon=warning&title=hey",
            ["dev1", "dev2"],
            "warning",
            id=f"{TEST}: de-/serialization",
        ),
        pytest.param(
            "join://shoutrrr:api-key@join/?devices=device1,device2&icon=https://i.example/i.png"
            "&title=Alert",
            ["device1", "device2"],
            "https://i.example/i.png",
            id=f"{DOC}: URL format",
        ),
        pytest.param(
            "join://shoutrrr:api-key@join/?devices=deviceId", ["deviceId"], "", id=f"{DOC}: guide"
        ),
        pytest.param(
            "join://Token:TestToken@dummy?DEVICES=testDevice",
            ["testDevice"],
            "",
            id=f"{TEST}: any host, any case",
        ),
    ],
)
def test_shoutrrr_urls(url: str, devices: list[str], icon: str) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, JoinChannel) and channel.devices == devices
    [request] = channel.plan(make_message())
    assert httpx.URL(str(request.url)).params.get("icon", "") == icon


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param(
            "join://Token:@user?devices=testDevice", "API key is missing", id=f"{TEST}: empty token"
        ),
        pytest.param(
            "join://Token:key@join",
            "no devices",
            id="pkg/services/push/join/join_config.go: ErrDevicesMissing",
        ),
        pytest.param(
            "join://Token:key@join?devicey=a,b,c,d", "unknown query key", id=f"{TEST}: devicey"
        ),
    ],
)
def test_refused(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_exact_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"success": True}))
    async with mock_client(recorder) as client:
        channel = build(client, "join://shoutrrr:K3Y@join?devices=dev1,dev2&icon=ic&title=Ops")
        result = await channel.send(make_message(link="https://l.example/c1"))
    assert result.ok, result.error
    request = recorder.last
    assert request.method == "POST"
    assert request.url.copy_with(query=None) == httpx.URL(
        "https://joinjoaomgcd.appspot.com/_ah/api/messaging/v1/sendPush"
    )
    assert dict(request.url.params) == {
        "deviceIds": "dev1,dev2",
        "apikey": "K3Y",
        "text": "Outcome: error\nError: quota exceeded",
        "title": "Ops: capsule.create failed: capsule c1 (team-1)",
        "icon": "ic",
        "url": "https://l.example/c1",
    }
    assert request.headers["content-type"] == "text/plain"
    assert request.content == b""


async def test_api_base() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"success": True}))
    async with mock_client(recorder) as client:
        channel = build(client, "join://s:k@join?devices=d", api_base="http://127.0.0.1:9")
        assert (await channel.send(make_message())).ok
    assert recorder.last.url.path == "/_ah/api/messaging/v1/sendPush"
    assert recorder.last.url.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("status", "body", "outcome", "needle"),
    [
        pytest.param(
            200,
            {"success": False, "errorMessage": "User Not Authenticated"},
            OutcomeClass.PERMANENT,
            "User Not Authenticated",
            id="bad-key-in-200",
        ),
        pytest.param(
            200,
            {"success": False, "errorMessage": "No device to send message to"},
            OutcomeClass.PERMANENT,
            "No device",
            id="unknown-device",
        ),
        pytest.param(429, {}, OutcomeClass.RETRYABLE, "429", id="rate-limited"),
        pytest.param(500, {}, OutcomeClass.RETRYABLE, "500", id="server-error"),
        pytest.param(401, {}, OutcomeClass.PERMANENT, "401", id="unauthorized"),
    ],
)
async def test_answers(status: int, body: object, outcome: OutcomeClass, needle: str) -> None:
    answer = httpx.Response(status, json=body)
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, "join://s:SECRETKEY9@join?devices=d").send(make_message())
    assert result.outcome is outcome and needle in (result.error or "")
    assert "SECRETKEY9" not in (result.error or "") + (result.response_excerpt or "")
