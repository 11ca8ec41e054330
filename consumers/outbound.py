"""Outbound HTTP: the client every channel shares, httpx's API on aiohttp, guarded.

Channels are written against ``httpx.AsyncClient`` (tests give them an
``httpx.MockTransport``), but httpx's own connection pool is several times
slower than aiohttp under concurrent load (see the performance reference), so
the daemon's client runs the httpx API over ``httpx_aiohttp.AiohttpTransport``.

The transport accepts a ``ClientSession`` factory, which is how the guard is
plugged in: the session's ``TCPConnector`` resolves every host name through
``netguard.GuardedResolver``, so the address checked is the address connected
to. aiohttp skips the resolver for IP literals, so ``_GuardedTransport``
checks literal hosts before handing the request to aiohttp, and translates
the aiohttp errors httpx_aiohttp lets through into httpx ones, so channels
only ever see httpx's exception tree.

Other things closed off here because they would bypass the guard: proxies
from the environment (``trust_env=False`` on both layers; an httpx proxy mount
would not even use aiohttp) and redirects (never followed; a 3xx is reported
to the operator instead).

The client is an ``OutboundClient``: an ``AsyncClient`` that also names its
transport, so the channels' HTTP base can hand a prepared ``httpx.Request``
straight to it, guard included, and skip ``AsyncClient``'s per-request work
(merging defaults, auth, redirects, cookie extraction: about 40 % of a
webhook POST here).
"""

from __future__ import annotations

import asyncio
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from eventbus.settings import SecuritySettings

from .netguard import ForbiddenTarget, GuardedResolver, TargetPolicy, check_url_host

__all__ = ["OutboundClient", "make_http_client"]

# aiohttp's default; idle connections are closed after this many seconds.
KEEPALIVE_SECONDS = 15.0
# How many allowed hosts the guard remembers (a host is one webhook target).
_ALLOWED_CACHE = 4096


class OutboundClient(httpx.AsyncClient):
    """An ``AsyncClient`` that exposes the transport it sends through.

    ``transport`` receives requests exactly as the client would pass them on,
    so a sender that needs none of the client's per-request work may call
    ``transport.handle_async_request`` itself. Tests build one on an
    ``httpx.MockTransport`` to exercise that path.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport, **options: Any) -> None:
        super().__init__(transport=transport, **options)
        self.transport = transport


class _GuardedTransport(httpx.AsyncBaseTransport):
    """Checks IP-literal hosts, then delegates to the aiohttp transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport, policy: TargetPolicy) -> None:
        self._inner = inner
        self._policy = policy
        # Hosts already found allowed: the answer depends only on the host
        # and the policy, which is fixed for this transport.
        self._allowed: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host not in self._allowed:
            try:
                check_url_host(host, self._policy)
            except ForbiddenTarget as exc:
                raise httpx.ConnectError(str(exc), request=request) from exc
            if len(self._allowed) < _ALLOWED_CACHE:
                self._allowed.add(host)
        try:
            return await self._inner.handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            # httpx_aiohttp maps every aiohttp connection error to ConnectTimeout;
            # a refused connection or a failed lookup is not a timeout, and an
            # operator reading "timeout" would look in the wrong place.
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ClientConnectorError) and not isinstance(
                cause, asyncio.TimeoutError
            ):
                raise httpx.ConnectError(str(exc), request=request) from cause
            raise
        except aiohttp.ClientResponseError as exc:
            # Malformed or unexpected responses httpx_aiohttp does not map.
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.TransportError(f"{type(exc).__name__}: {exc}", request=request) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


def make_http_client(
    security: SecuritySettings, *, timeout: float, max_connections: int = 100
) -> OutboundClient:
    """The client every channel of the daemon shares.

    ``timeout`` applies to connecting, each read and each write (channels may
    pass a per-request timeout of their own). Connections are kept alive and
    pooled, at most ``max_connections`` at once. Outbound connections go
    through the private-target guard configured by ``security``; a refused
    target surfaces as an ``httpx.ConnectError`` (or another ``httpx``
    transport error) whose cause chain holds a ``netguard.ForbiddenTarget``
    (find it with ``netguard.forbidden_cause``).

    Creating the client makes no connection and needs no event loop; close it
    with ``await client.aclose()`` (or ``async with``).
    """
    if max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, got {max_connections}")
    policy = TargetPolicy(security)
    ssl_context = httpx.create_ssl_context()

    def session() -> aiohttp.ClientSession:
        # Called by the transport on its first request, inside the running
        # loop, which aiohttp's connector and resolvers require.
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ssl=ssl_context,
            resolver=GuardedResolver(policy),
        )
        return aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            # Receivers' cookies must not follow us to the next delivery.
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    transport = _GuardedTransport(AiohttpTransport(client=session), policy)
    return OutboundClient(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        # httpx keeps its own jar above aiohttp's: make it refuse every cookie.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )
