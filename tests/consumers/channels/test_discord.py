"""Discord webhooks: URL table, the exact request, 429 with Retry-After."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.base import OutcomeClass
from consumers.channels.discord import DiscordChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client

TOKEN = "Abc-DEF_ghi123456789jkl"


@pytest.mark.parametrize(
    ("url", "webhook_id", "thread"),
    [
        pytest.param(f"discord://{TOKEN}@123456789", "123456789", None, id="docs-form"),
        pytest.param(
            f"discord://{TOKEN}@1?thread_id=42&username=bot&Color=0x50D9ff", "1", "42", id="options"
        ),
    ],
)
def test_url_good(url: str, webhook_id: str, thread: str | None) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, DiscordChannel)
    assert (channel.webhook_id, channel.thread_id) == (webhook_id, thread)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("discord://123", "webhook token", id="no-token"),
        pytest.param(f"discord://{TOKEN}@abc", "not numeric", id="id-not-numeric"),
        pytest.param(f"discord://{TOKEN}@1?color=purple", "hex colour", id="bad-color"),
        pytest.param(f"discord://{TOKEN}@1?splitlines=x&foo=1", "unknown query key", id="unknown"),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError) as info:
        build(httpx.AsyncClient(), url)
    assert needle in str(info.value) and TOKEN not in str(info.value)


async def test_exact_request_and_api_base_override() -> None:
    recorder = Recorder(lambda request: httpx.Response(204))
    async with mock_client(recorder) as client:
        channel = build(
            client,
            f"discord://{TOKEN}@99?thread_id=5&username=ops",
            api_base="http://127.0.0.1:9000",
        )
        result = await channel.send(make_message(link="https://x.example/c1"))
    assert result.ok
    assert recorder.last.method == "POST"
    assert (
        str(recorder.last.url)
        == f"http://127.0.0.1:9000/api/webhooks/99/{TOKEN}?wait=true&thread_id=5"
    )
    assert recorder.json() == {
        "username": "ops",
        "embeds": [
            {
                "title": "capsule.create failed: capsule c1 (team-1)",
                "description": "Outcome: error\nError: quota exceeded\nhttps://x.example/c1",
                "color": 0xE74C3C,
                "url": "https://x.example/c1",
                "timestamp": "2024-05-01T12:00:00.000Z",
            }
        ],
    }


async def test_colour_follows_outcome() -> None:
    recorder = Recorder(lambda request: httpx.Response(204))
    async with mock_client(recorder) as client:
        await build(client, f"discord://{TOKEN}@9").send(make_message(outcome="success"))
    assert recorder.json()["embeds"][0]["color"] == 0x2ECC71


@pytest.mark.parametrize(
    ("response", "outcome", "retry_after"),
    [
        pytest.param(
            httpx.Response(
                429, headers={"Retry-After": "3"}, json={"retry_after": 2.5, "global": False}
            ),
            OutcomeClass.RATE_LIMITED,
            3.0,
            id="429-header",
        ),
        pytest.param(
            httpx.Response(429, json={"retry_after": 2.5}),
            OutcomeClass.RATE_LIMITED,
            2.5,
            id="429-json-only",
        ),
        pytest.param(
            httpx.Response(404, json={"code": 10015, "message": "Unknown Webhook"}),
            OutcomeClass.PERMANENT,
            None,
            id="unknown-webhook",
        ),
        pytest.param(httpx.Response(503), OutcomeClass.RETRYABLE, None, id="5xx"),
    ],
)
async def test_classification(
    response: httpx.Response, outcome: OutcomeClass, retry_after: float | None
) -> None:
    async with mock_client(Recorder(lambda request: response)) as client:
        result = await build(client, f"discord://{TOKEN}@9").send(make_message())
    assert result.outcome is outcome
    assert result.retry_after == retry_after
    assert TOKEN not in (result.error or "")


async def test_long_body_becomes_several_messages() -> None:
    recorder = Recorder(lambda request: httpx.Response(204))
    async with mock_client(recorder) as client:
        await build(client, f"discord://{TOKEN}@9").send(
            make_message(body="y" * 50 + "\n" + "z" * 5000)
        )
    assert len(recorder.requests) == 3
    assert all(len(recorder.json(i)["embeds"][0]["description"]) <= 4096 for i in range(3))
