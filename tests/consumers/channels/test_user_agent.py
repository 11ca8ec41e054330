"""One ``User-Agent: eventbus/<version>`` on every request of every HTTP channel.

Set once, on the one HTTP path (``_http``), so it holds for the client path
(tests, CLI), the daemon's fast transport path and aiohttp below it (which
would otherwise send ``Python/... aiohttp/...``; httpx sends ``python-httpx``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiohttp import web

import eventbus
from consumers.channels._http import HttpChannel
from consumers.channels.base import ChannelDeps
from consumers.channels.registry import CHANNEL_TYPES, create_channel
from consumers.outbound import OutboundClient, make_http_client
from eventbus.settings import ChannelSpec, SecuritySettings

from .support import Recorder, make_message

EXPECTED = f"eventbus/{eventbus.__version__}"
WORKFLOW = "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"

# One working definition per HTTP channel type.
SAMPLES: dict[str, dict[str, Any]] = {
    "webhook": {"type": "webhook", "url": "https://hooks.example.com/in"},
    "telegram": {"url": "telegram://123456:ABCdefGHIjklMNOpqr@telegram?chats=42"},
    "discord": {"url": "discord://TOKENabcdefghijklmnop@123456789"},
    "slack": {"url": "slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook"},
    "ntfy": {"url": "ntfy://ntfy.example.com/alerts"},
    "gotify": {"url": "gotify://gotify.example.com/AJFh0x8Y3l6fEc2"},
    "teams": {"url": f"teams://?host={quote(WORKFLOW, safe='')}"},
    "matrix": {"url": "matrix://:syt_token123@matrix.example.org/?rooms=!abc:example.org"},
    "pushover": {
        "url": "pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/"
    },
    "mattermost": {"url": "mattermost://mm.example.com/TOKENabcdefghij"},
    "googlechat": {
        "url": "googlechat://chat.googleapis.com/v1/spaces/FOO/messages?key=K1&token=T2"
    },
    "generic": {"url": "generic://hooks.example.com/in?template=json"},
    "bark": {"url": "bark://:devicekey@bark.example.com"},
    "ifttt": {"url": "ifttt://iftttkey/?events=deploy"},
    "join": {"url": "join://shoutrrr:apikey@join/?devices=dev1"},
    "lark": {"url": "lark://open.larksuite.com/tok123"},
    "pushbullet": {"url": "pushbullet://o.abcdefghijklmnopqrstuvwxyz012345"},
    "rocketchat": {"url": "rocketchat://chat.example.com/tokenA/tokenB"},
    "signal": {"url": "signal://signal.example.com/+15551234567/+15557654321"},
    "wecom": {"url": "wecom://693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa"},
    "zulip": {"url": "zulip://bot%40example.com:KEY0123456789@example.zulipchat.com/?stream=s"},
    "pagerduty": {"url": "pagerduty:///eb243592faa24ba2a5511afdf565c889"},
    "opsgenie": {"url": "opsgenie://api.opsgenie.com/eb243592-faa2-4ba2"},
}
NOT_HTTP = {"console", "smtp"}


def ok(request: httpx.Request) -> httpx.Response:
    # Enough for every provider's success check (Telegram and Slack look at "ok",
    # WeCom at "errcode").
    return httpx.Response(200, json={"ok": True, "event_id": "$1", "id": 1, "errcode": 0})


def test_every_http_channel_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(CHANNEL_TYPES) - NOT_HTTP


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@pytest.mark.parametrize("fast", [True, False], ids=["transport", "client"])
async def test_one_eventbus_user_agent(kind: str, fast: bool) -> None:
    recorder = Recorder(ok)
    make = OutboundClient if fast else httpx.AsyncClient
    async with make(transport=httpx.MockTransport(recorder)) as http:
        channel = create_channel(ChannelSpec(name="ch", **SAMPLES[kind]), ChannelDeps(http=http))
        assert isinstance(channel, HttpChannel)
        result = await channel.send(make_message())
    assert result.ok, result.error
    assert recorder.requests
    for request in recorder.requests:
        assert request.headers.get_list("user-agent") == [EXPECTED]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[list[list[str]], int]]:
    seen: list[list[str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.getall("User-Agent", []))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    yield seen, server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()


async def test_aiohttp_below_sends_ours_only(receiver: tuple[list[list[str]], int]) -> None:
    seen, port = receiver
    local = SecuritySettings(allow_private_targets=True)
    specs = [
        {"type": "webhook", "url": f"http://127.0.0.1:{port}/in"},
        {
            "url": "telegram://123456:ABCdefGHIjklMNOpqr@telegram?chats=42",
            "api_base": f"http://127.0.0.1:{port}",
        },
        {"url": f"generic+http://127.0.0.1:{port}/in?template=json"},
    ]
    async with make_http_client(local, timeout=5) as http:
        for options in specs:
            channel = create_channel(
                ChannelSpec(name="ch", **options), ChannelDeps(http=http, security=local)
            )
            result = await channel.send(make_message())
            assert result.ok, json.dumps(options) + str(result.error)
    assert seen == [[EXPECTED]] * len(specs)
