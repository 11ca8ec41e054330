"""Slack: incoming webhook and bot forms, exact requests, ``ok: false``."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.base import OutcomeClass
from consumers.channels.slack import SlackChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client

HOOK = "WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi"
BOT = "123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N"


@pytest.mark.parametrize(
    ("url", "channel"),
    [
        pytest.param(f"slack://hook:{HOOK}@webhook", None, id="webhook"),
        pytest.param(
            f"slack://xoxb:{BOT}@C001CH4NN3L?botname=ops&color=good", "C001CH4NN3L", id="bot"
        ),
        pytest.param(
            "slack://AAAAAAAAA/BBBBBBBBB/123456789123456789123456", None, id="legacy-webhook"
        ),
    ],
)
def test_url_good(url: str, channel: str | None) -> None:
    built = build(httpx.AsyncClient(), url)
    assert isinstance(built, SlackChannel) and built.channel == channel


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("slack://hook:A-B@webhook", "malformed", id="short-hook"),
        pytest.param(f"slack://xoxb:{BOT}@webhook", "needs a channel", id="bot-no-channel"),
        pytest.param(f"slack://xoxa:{BOT}@C01", "not supported", id="unknown-token-type"),
        pytest.param("slack://webhook", "malformed", id="no-token"),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_webhook_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, text="ok"))
    async with mock_client(recorder) as client:
        result = await build(client, f"slack://hook:{HOOK}@webhook").send(
            make_message(title="a<b", body="x&y")
        )
    assert result.ok
    assert str(recorder.last.url) == (
        "https://hooks.slack.com/services/WNA3PBYV6/F20DUQND3RQ/Webc4MAvoacrpPakR8phF0zi"
    )
    assert recorder.json() == {
        "text": "*a&lt;b*",
        "attachments": [{"color": "#E74C3C", "text": "x&amp;y", "fallback": "a&lt;b\nx&amp;y"}],
    }


async def test_bot_request_and_ok_false() -> None:
    recorder = Recorder(
        lambda request: httpx.Response(200, json={"ok": False, "error": "not_in_channel"})
    )
    async with mock_client(recorder) as client:
        result = await build(
            client, f"slack://xoxb:{BOT}@C1?thread_ts=1.2", api_base="http://127.0.0.1:1"
        ).send(make_message())
    assert str(recorder.last.url) == "http://127.0.0.1:1/api/chat.postMessage"
    assert recorder.last.headers["authorization"] == f"Bearer xoxb-{BOT}"
    assert recorder.json()["channel"] == "C1" and recorder.json()["thread_ts"] == "1.2"
    assert result.outcome is OutcomeClass.PERMANENT
    assert "not_in_channel" in (result.error or "") and "invite the bot" in (result.error or "")


async def test_rate_limited_and_gone() -> None:
    async with mock_client(
        Recorder(lambda request: httpx.Response(429, headers={"Retry-After": "9"}))
    ) as client:
        result = await build(client, f"slack://hook:{HOOK}@webhook").send(make_message())
    assert result.outcome is OutcomeClass.RATE_LIMITED and result.retry_after == 9
    async with mock_client(
        Recorder(lambda request: httpx.Response(410, text="channel_is_archived"))
    ) as client:
        result = await build(client, f"slack://hook:{HOOK}@webhook").send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT and result.disable_channel
    assert "channel_is_archived" in (result.error or "")
