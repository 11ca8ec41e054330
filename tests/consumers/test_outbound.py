"""The production client against a real local server: guard, redirects, errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from consumers.netguard import forbidden_cause
from consumers.outbound import make_http_client
from eventbus.errors import ConfigError
from eventbus.settings import SecuritySettings

ALLOW_PRIVATE = SecuritySettings(allow_private_targets=True)


@dataclass
class Server:
    port: int
    peers: set[tuple[str, int]] = field(default_factory=set)
    bodies: list[bytes] = field(default_factory=list)
    cookies: list[str | None] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(port=0)

    async def hook(request: web.Request) -> web.Response:
        state.bodies.append(await request.read())
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            state.peers.add(tuple(peer[:2]))
        return web.Response(status=204)

    async def cookie(request: web.Request) -> web.Response:
        state.cookies.append(request.headers.get("Cookie"))
        return web.Response(status=200, headers={"Set-Cookie": "session=abc; Path=/"})

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "http://169.254.169.254/"})

    async def stall(request: web.Request) -> web.Response:
        await state.release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/redirect", redirect)
    app.router.add_post("/cookie", cookie)
    app.router.add_post("/stall", stall)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        pytest.param("localhost", "'localhost': it resolves to 127.0.0.1", id="name-to-loopback"),
        pytest.param("127.0.0.1", "127.0.0.1 (loopback)", id="v4-literal"),
        pytest.param("[::1]", "::1 (loopback)", id="v6-literal"),
        pytest.param("[::ffff:127.0.0.1]", "loopback, embedded in IPv6", id="mapped-literal"),
        pytest.param("127.1", "not a canonical IP address", id="short-form"),
        pytest.param("2130706433", "not a canonical IP address", id="decimal"),
    ],
)
async def test_refuses_loopback(server: Server, host: str, shown: str) -> None:
    async with make_http_client(SecuritySettings(), timeout=5) as client:
        for _ in range(2):  # a refusal is not remembered as allowed
            with pytest.raises(httpx.TransportError) as info:
                await client.post(server.url(host=host), content=b"{}")
    refused = forbidden_cause(info.value)
    assert refused is not None, info.value
    assert shown in str(refused)
    assert shown in str(info.value)
    assert server.bodies == []


async def test_metadata_literal_refused_even_with_allow_private() -> None:
    async with make_http_client(ALLOW_PRIVATE, timeout=5) as client:
        with pytest.raises(httpx.ConnectError, match="cloud metadata") as info:
            await client.get("http://169.254.169.254/latest/meta-data/")
    assert forbidden_cause(info.value) is not None


@pytest.mark.parametrize("host", [pytest.param("127.0.0.1", id="literal"), "localhost"])
async def test_allow_private_targets_reaches_local_server(server: Server, host: str) -> None:
    async with make_http_client(ALLOW_PRIVATE, timeout=5) as client:
        response = await client.post(server.url(host=host), content=b'{"a": 1}')
    assert response.status_code == 204
    assert server.bodies == [b'{"a": 1}']


async def test_allowed_hosts_by_name_and_by_cidr(server: Server) -> None:
    by_name = SecuritySettings(allowed_hosts=["localhost"])
    async with make_http_client(by_name, timeout=5) as client:
        assert (await client.post(server.url(host="localhost"))).status_code == 204
        # The name is allowed, not every loopback address.
        with pytest.raises(httpx.ConnectError):
            await client.post(server.url(host="127.0.0.1"))
    by_cidr = SecuritySettings(allowed_hosts=["127.0.0.0/8"])
    async with make_http_client(by_cidr, timeout=5) as client:
        assert (await client.post(server.url(host="127.0.0.1"))).status_code == 204


def test_bad_allow_list_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="allowed_hosts"):
        make_http_client(SecuritySettings(allowed_hosts=["10.0.0.0/99"]), timeout=5)


def test_bad_max_connections() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        make_http_client(SecuritySettings(), timeout=5, max_connections=0)


async def test_keeps_connections_alive(server: Server) -> None:
    async with make_http_client(ALLOW_PRIVATE, timeout=5) as client:
        for _ in range(3):
            assert (await client.post(server.url(), content=b"x")).status_code == 204
    assert len(server.bodies) == 3
    assert len(server.peers) == 1


async def test_redirects_are_not_followed(server: Server) -> None:
    async with make_http_client(ALLOW_PRIVATE, timeout=5) as client:
        response = await client.post(server.url("/redirect"))
    assert response.status_code == 302
    assert response.headers["location"] == "http://169.254.169.254/"


async def test_cookies_are_not_kept(server: Server) -> None:
    async with make_http_client(ALLOW_PRIVATE, timeout=5) as client:
        await client.post(server.url("/cookie"))
        await client.post(server.url("/cookie"))
        assert not client.cookies
    assert server.cookies == [None, None]


async def test_timeout_is_an_httpx_timeout(server: Server) -> None:
    async with make_http_client(ALLOW_PRIVATE, timeout=0.2) as client:
        with pytest.raises(httpx.TimeoutException):
            await client.post(server.url("/stall"))


async def test_connection_refused_is_an_httpx_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with make_http_client(ALLOW_PRIVATE, timeout=5) as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.post(f"http://127.0.0.1:{port}/")
    assert forbidden_cause(info.value) is None
    assert not isinstance(info.value, httpx.TimeoutException), "refused is not a timeout"


async def test_failed_lookup_is_a_connect_error_not_a_timeout() -> None:
    async with make_http_client(ALLOW_PRIVATE, timeout=5) as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.post("http://eventbus-test.invalid/")
    assert not isinstance(info.value, httpx.TimeoutException)


async def test_environment_proxies_are_ignored(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would bypass the guard (the proxy connects, not us); this one
    # does not even exist, so using it would fail the request.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with make_http_client(ALLOW_PRIVATE, timeout=5) as client:
        assert (await client.post(server.url())).status_code == 204


async def test_unused_client_closes_cleanly() -> None:
    client = make_http_client(SecuritySettings(), timeout=5)
    await client.aclose()
    assert client.is_closed
