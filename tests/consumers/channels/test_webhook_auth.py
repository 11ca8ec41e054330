"""Webhooks with ``user:pass@`` in the URL, and channels that never raise.

The receiver is a local aiohttp server that answers 401 unless the Basic
header is right; the client is the daemon's own (httpx API over aiohttp),
where URL credentials plus Basic auth used to make aiohttp raise.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from consumers.channels.base import ChannelDeps, OutcomeClass
from consumers.channels.registry import create_channel
from consumers.outbound import OutboundClient, make_http_client
from eventbus.settings import ChannelSpec, SecuritySettings

from .support import make_message

LOCAL = SecuritySettings(allow_private_targets=True)
USER, PASSWORD = "al ice", "pa:ss@w0rd/secret"  # characters a URL must percent-encode
QUOTED = "al%20ice:pa%3Ass%40w0rd%2Fsecret"


class Receiver:
    """Answers 204 to the right Basic credentials, 401 otherwise."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        self.seen.append((request.path_qs, auth))
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return web.Response(status=204 if auth == expected else 401)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    found.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield found
    await runner.cleanup()


def webhook(url: str, http: httpx.AsyncClient) -> object:
    spec = ChannelSpec(name="hook", type="webhook", url=url)
    return create_channel(spec, ChannelDeps(http=http, security=LOCAL))


async def test_url_credentials_are_sent_as_basic_auth(receiver: Receiver) -> None:
    url = f"http://{QUOTED}@127.0.0.1:{receiver.port}/in?x=1"
    async with make_http_client(LOCAL, timeout=5) as http:
        channel = webhook(url, http)
        result = await channel.send(make_message())  # type: ignore[attr-defined]
    assert result.outcome is OutcomeClass.DELIVERED, result.error
    ((path, auth),) = receiver.seen
    assert path == "/in?x=1"
    assert auth is not None and auth.startswith("Basic ")
    for text in (repr(channel), channel.describe()):  # type: ignore[attr-defined]
        assert PASSWORD not in text and QUOTED not in text


async def test_plan_shows_the_header_masked_and_the_url_without_credentials() -> None:
    channel = webhook(f"https://{QUOTED}@hooks.example.com/in", httpx.AsyncClient())
    (planned,) = channel.plan(make_message())  # type: ignore[attr-defined]
    assert planned.safe_url() == "https://hooks.example.com/in"
    assert planned.safe_headers()["authorization"] == "Basic ***"


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ValueError("Cannot combine AUTHORIZATION header"), id="ValueError"),
        pytest.param(TypeError("header value must be str"), id="TypeError"),
        pytest.param(RuntimeError("a bug below us"), id="RuntimeError"),
    ],
)
@pytest.mark.parametrize("fast", [True, False], ids=["transport", "client"])
async def test_a_raising_transport_becomes_a_permanent_result(error: Exception, fast: bool) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    make = OutboundClient if fast else httpx.AsyncClient
    async with make(transport=httpx.MockTransport(fail)) as http:
        channel = webhook("https://hooks.example.com/in/TOKENabcdefgh", http)
        result = await channel.send(make_message())  # type: ignore[attr-defined]
    assert result.outcome is OutcomeClass.PERMANENT
    assert result.error is not None
    assert f"{type(error).__name__}: {error}" in result.error
    assert "TOKENabcdefgh" not in result.error


async def test_a_bug_while_planning_is_a_result_too(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = webhook("https://hooks.example.com/in", httpx.AsyncClient())

    def broken(message: object) -> object:
        raise KeyError("missing field")

    monkeypatch.setattr(channel, "plan", broken)
    result = await channel.send(make_message())  # type: ignore[attr-defined]
    assert result.outcome is OutcomeClass.PERMANENT
    assert result.error is not None and "unexpected error" in result.error
