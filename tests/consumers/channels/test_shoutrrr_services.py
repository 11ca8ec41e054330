"""What bark, ifttt, join, lark, pushbullet and rocketchat share: no secret
anywhere, ``urls verify`` prints the exact request (masked), and the
private-target guard refuses a local ``api_base`` unless allowed."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
import structlog
from click.testing import CliRunner

from consumers.channels.base import ChannelDeps, OutcomeClass
from consumers.channels.registry import build_channel, create_channel
from consumers.outbound import make_http_client
from eventbus.cli import cli
from eventbus.settings import ChannelSpec, SecuritySettings

from .support import make_message

SECRET = "S3CRETVALUE0042xyzABCDEFGHIJKLMNOP"  # 34 characters: a Pushbullet token too
# (URL holding SECRET, the request line urls verify prints)
SERVICES = {
    "bark": (f"bark://:{SECRET}@bark.example.com", "POST https://bark.example.com/push"),
    "ifttt": (
        f"ifttt://{SECRET}/?events=deploy",
        "POST https://maker.ifttt.com/trigger/deploy/with/key/***",
    ),
    "join": (
        f"join://shoutrrr:{SECRET}@join/?devices=dev1",
        "POST https://joinjoaomgcd.appspot.com/_ah/api/messaging/v1/sendPush?deviceIds=dev1"
        "&apikey=***&text=",
    ),
    "lark": (
        f"lark://open.larksuite.com/{SECRET}?secret={SECRET}",
        "POST https://open.larksuite.com/open-apis/bot/v2/hook/***",
    ),
    "pushbullet": (f"pushbullet://{SECRET}/dev1", "POST https://api.pushbullet.com/v2/pushes"),
    "rocketchat": (
        f"rocketchat://bot@chat.example.com/{SECRET}/{SECRET}/ops",
        "POST https://chat.example.com/hooks/***/***",
    ),
}


def leaks(text: str) -> bool:
    return SECRET in text or quote(SECRET) in text


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_no_secret_anywhere(service: str) -> None:
    url = SERVICES[service][0]

    def echo(request: httpx.Request) -> httpx.Response:
        # a hostile server that echoes the URL and headers back in its error
        return httpx.Response(400, text=f"bad request to {request.url} with {request.headers}")

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    spec = ChannelSpec(name="c", url=url)
    assert not leaks(repr(spec))
    for handler in (echo, broken):
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            channel = build_channel(spec, ChannelDeps(http=client, timeout=2.0))
            with structlog.testing.capture_logs() as logs:
                result = await channel.send(make_message())
            assert not result.ok
            assert not leaks(repr(result)), result
            assert not leaks(repr(logs))
            assert not leaks(channel.describe()) and not leaks(repr(channel))


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_verify_prints_the_request_masked(service: str) -> None:
    url, line = SERVICES[service]
    verified = CliRunner().invoke(cli, ["urls", "verify", url])
    assert verified.exit_code == 0, verified.output
    assert f"service:    {service}" in verified.stdout
    assert f"1. {line}" in verified.stdout
    assert "body (" in verified.stdout
    assert not leaks(verified.stdout + verified.stderr), verified.stdout


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_private_api_base_is_refused_unless_allowed(service: str) -> None:
    spec = ChannelSpec(name="c", url=SERVICES[service][0], api_base="http://127.0.0.1:9")
    guarded = SecuritySettings()
    async with make_http_client(guarded, timeout=2) as http:
        channel = create_channel(spec, ChannelDeps(http=http, security=guarded))
        result = await channel.send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert (result.error or "").startswith("target refused: refusing to connect to 127.0.0.1")
    # allowed: the request is made (nothing listens on port 9, so it fails to connect)
    local = SecuritySettings(allow_private_targets=True)
    async with make_http_client(local, timeout=2) as http:
        channel = create_channel(spec, ChannelDeps(http=http, security=local))
        result = await channel.send(make_message())
    assert result.outcome is OutcomeClass.RETRYABLE, result.error
    assert "connection failed" in (result.error or "")
