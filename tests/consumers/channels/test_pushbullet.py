"""Pushbullet: shoutrrr's URLs (each case cites its source in
nicholas-fedor/shoutrrr), targets from path and fragment, the request, the answers."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.base import ChannelDeps, OutcomeClass
from consumers.channels.pushbullet import PushbulletChannel, create, target_field
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client, spec

TEST = "pkg/services/push/pushbullet/pushbullet_test.go"
DOC = "docs/services/push/pushbullet/index.md"
TOKEN = "tokentokentokentokentokentokentoke"  # 34 characters, as in shoutrrr's tests


@pytest.mark.parametrize(
    ("url", "targets"),
    [
        pytest.param(f"pushbullet://{TOKEN}", [""], id=f"{TEST}: should set token"),
        pytest.param(f"pushbullet://{TOKEN}/test", ["test"], id=f"{TEST}: device from path"),
        pytest.param(f"pushbullet://{TOKEN}/foo#bar", ["foo", "#bar"], id=f"{TEST}: channel"),
        pytest.param(
            f"pushbullet://{TOKEN}/device?title=Great+News", ["device"], id=f"{TEST}: title"
        ),
        pytest.param(
            f"pushbullet://{TOKEN}/device/#channel/iam@email.com",
            ["device", "#channel", "iam@email.com"],
            id=f"{DOC}: URL format",
        ),
        pytest.param(f"pushbullet://{TOKEN}/a@b.example", ["a@b.example"], id=f"{DOC}: email"),
    ],
)
def test_shoutrrr_urls(url: str, targets: list[str]) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, PushbulletChannel) and channel.targets == targets


@pytest.mark.parametrize(
    ("target", "field"),
    [
        pytest.param("iam@email.com", ("email", "iam@email.com"), id=f"{TEST}: email target"),
        pytest.param("device", ("device_iden", "device"), id=f"{TEST}: device target"),
        pytest.param("#channel", ("channel_tag", "channel"), id=f"{TEST}: channel target"),
        pytest.param("", None, id="no target: all devices"),
    ],
)
def test_target_fields(target: str, field: tuple[str, str] | None) -> None:
    assert target_field(target) == field


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("pushbullet://short", "not 34", id=f"{TEST}: token of the wrong size"),
        pytest.param(
            f"pushbullet://{TOKEN}/d?foo=bar",
            "unknown query key",
            id="pkg/format/prop_key_resolver.go: not a valid config key",
        ),
        pytest.param(
            f"pushbullet://{TOKEN}/#chan?title=x",
            "query after the '#channel'",
            id="query after the fragment (Go would make it part of the channel)",
        ),
    ],
)
def test_refused(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


def note(title: str = "capsule.create failed: capsule c1 (team-1)") -> dict[str, object]:
    return {"type": "note", "title": title, "body": "Outcome: error\nError: quota exceeded"}


async def test_one_push_per_target() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"active": True, "type": "note"}))
    async with mock_client(recorder) as client:
        channel = build(client, f"pushbullet://{TOKEN}/dev1/?title=Ops#chan/me@example.com")
        result = await channel.send(make_message())
    assert result.ok, result.error
    assert {str(r.url) for r in recorder.requests} == {"https://api.pushbullet.com/v2/pushes"}
    assert all(r.method == "POST" for r in recorder.requests)
    assert recorder.last.headers["access-token"] == TOKEN
    assert recorder.last.headers["content-type"] == "application/json"
    title = "Ops: capsule.create failed: capsule c1 (team-1)"
    assert [recorder.json(index) for index in range(3)] == [
        {**note(title), "device_iden": "dev1"},
        {**note(title), "channel_tag": "chan"},
        {**note(title), "email": "me@example.com"},
    ]


async def test_no_target_pushes_to_all_devices_with_the_link() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={}))
    async with mock_client(recorder) as client:
        channel = build(client, f"pushbullet://{TOKEN}", api_base="http://127.0.0.1:9")
        assert (await channel.send(make_message(link="https://l.example/c1"))).ok
    assert str(recorder.last.url) == "http://127.0.0.1:9/v2/pushes"
    body = recorder.json()
    assert body["body"].endswith("\nhttps://l.example/c1")
    assert not {"device_iden", "email", "channel_tag"} & set(body)


@pytest.mark.parametrize(
    ("status", "body", "outcome", "needle"),
    [
        pytest.param(
            401,
            {
                "error": {
                    "cat": "~(=^‥^)",
                    "message": "Access token is missing or invalid.",
                    "type": "invalid_request",
                }
            },
            OutcomeClass.PERMANENT,
            "Access token is missing or invalid",
            id="bad-token",
        ),
        pytest.param(
            400,
            {"error": {"message": "Device not found.", "type": "invalid_request"}},
            OutcomeClass.PERMANENT,
            "Device not found",
            id="bad-device",
        ),
        pytest.param(500, {}, OutcomeClass.RETRYABLE, "500", id="server-error"),
    ],
)
async def test_answers(status: int, body: object, outcome: OutcomeClass, needle: str) -> None:
    answer = httpx.Response(status, json=body)
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, f"pushbullet://{TOKEN}").send(make_message())
    assert result.outcome is outcome and needle in (result.error or "")
    assert TOKEN not in (result.error or "")


async def test_429_waits_until_the_ratelimit_reset() -> None:
    reset = {"X-Ratelimit-Reset": "1700000090"}
    answer = httpx.Response(429, headers=reset, json={"error": {"message": "slow down"}})
    async with mock_client(Recorder(lambda request: answer)) as client:
        channel = create(spec(f"pushbullet://{TOKEN}"), ChannelDeps(http=client))
        channel._clock = lambda: 1_700_000_000.0
        result = await channel.send(make_message())
    assert result.outcome is OutcomeClass.RATE_LIMITED
    assert result.retry_after == 90 and "slow down" in (result.error or "")
