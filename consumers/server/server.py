"""Run the HTTP app with uvicorn inside the caller's event loop.

The worker owns the process's signals, so uvicorn must not install its own
handlers; the server binds its socket itself (``port=0`` picks a free port,
see ``HttpServer.port``) and is stopped with ``await server.stop()``::

    server = HttpServer(settings, redis=redis, health=health, metrics=metrics, store=store)
    await server.start()          # listening once this returns
    ...
    await server.stop()           # ends SSE streams, then shuts uvicorn down
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Self

import redis.asyncio as aioredis
import structlog
import uvicorn

from consumers.health import Health
from consumers.metrics import Metrics
from consumers.store import DeliveryStore
from eventbus.errors import ConfigError, ConfigProblem, EventBusError
from eventbus.keys import Keys
from eventbus.settings import ApiToken, Settings

from ..store.partitioned import delivery_store
from .app import create_app, set_tokens
from .live import LiveHub
from .live_broker import BrokerLiveHub, LiveSource

__all__ = ["HttpServer"]

log = structlog.get_logger(__name__)

# Seconds uvicorn waits for open connections at shutdown before cancelling
# them; SSE streams end on their own as soon as the hub stops.
_GRACEFUL_SHUTDOWN = 5.0


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class _Uvicorn(uvicorn.Server):
    """uvicorn without signal handling, reporting when it is listening.

    Overriding ``capture_signals`` is how uvicorn is embedded in a program
    that owns its signals (``serve()`` would otherwise replace the worker's
    SIGTERM/SIGINT handlers while it runs).
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


class HttpServer:
    """The worker's HTTP server: SSE live feed, dashboard, health, metrics.

    The constructor only stores its dependencies; ``start()`` subscribes to
    the live mirror (raising ``BrokerUnavailable`` if Redis cannot be
    reached), binds ``host:port`` (``ConfigError`` if it cannot) and returns
    once uvicorn is accepting connections. ``stop()`` ends every SSE stream
    and shuts the server down; it is safe to call more than once. ``redis``
    stays the caller's to close.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        redis: aioredis.Redis,
        health: Health,
        metrics: Metrics,
        store: DeliveryStore | None = None,
        host: str | None = None,
        port: int | None = None,
        live: LiveSource | None = None,
    ) -> None:
        keys = Keys(settings.broker.prefix)
        self.host = settings.http.host if host is None else host
        self._port = settings.http.port if port is None else port
        buffer = settings.http.client_buffer
        # The live mirror from Redis Pub/Sub, or from another broker (RabbitMQ mode).
        self.hub = (
            LiveHub(redis, keys, buffer=buffer, metrics=metrics, health=health)
            if live is None
            else BrokerLiveHub(live, redis, keys, buffer=buffer, metrics=metrics, health=health)
        )
        self.hub.partitions = settings.broker.partitions
        store = store or delivery_store(
            redis, keys, settings.consumer.record_ttl, settings.broker.partitions
        )
        self.app = create_app(
            settings, redis=redis, health=health, metrics=metrics, store=store, hub=self.hub
        )
        self._state = _State.UNOPENED
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self._tokens = list(settings.http.tokens)

    def __repr__(self) -> str:
        return f"HttpServer({self.host!r}, {self._port}, {self._state.name.lower()})"

    @property
    def port(self) -> int:
        """The port listened on (the real one when the setting was 0)."""
        if self._state is _State.UNOPENED:
            raise EventBusError("HttpServer.port is known only after start()")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._state is not _State.UNOPENED:
            raise EventBusError("HttpServer.start() may be called once; create a new server")
        self._state = _State.OPENED
        sock = self.bind()
        try:
            await self.hub.start()
        except BaseException:
            sock.close()
            self._state = _State.CLOSED
            raise
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            http="h11",
            ws="none",
            log_config=None,
            access_log=False,  # query strings may carry ?token=
            server_header=False,
            timeout_graceful_shutdown=int(_GRACEFUL_SHUTDOWN),
        )
        self._server = server = _Uvicorn(config)
        self._task = task = asyncio.create_task(server.serve(sockets=[sock]), name="http-server")
        listening = asyncio.ensure_future(server.listening.wait())
        await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
        if not server.listening.is_set():
            listening.cancel()
            await self.hub.stop()
            self._state = _State.CLOSED
            task.result()  # raises what stopped uvicorn
            raise EventBusError("the HTTP server stopped while starting")
        log.info("http.listening", url=self.url)
        if not self._tokens:
            log.warning(
                "http.no_tokens",
                url=self.url,
                hint="the dashboard, SSE and API refuse every request until http.tokens has "
                "one: make it with `eventbus tokens new --name NAME --teams TEAM`",
            )

    async def stop(self) -> None:
        if self._state is not _State.OPENED:
            self._state = _State.CLOSED
            if self._socket is not None:  # bound, never started
                self._socket.close()
            return
        self._state = _State.CLOSED
        await self.hub.stop()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        log.info("http.stopped")

    def set_tokens(self, tokens: Sequence[ApiToken]) -> None:
        """Accept ``tokens`` from now on (``http.tokens`` after a config reload).

        Every open stream is ended, so clients authenticate again on reconnect.
        """
        self._tokens = list(tokens)
        set_tokens(self.app, tokens)

    def bind(self) -> socket.socket:
        """Take the listening address now (``start()`` does if not done before).

        The daemon binds before it announces the worker, so a port in use is
        a configuration error at start-up, not after the worker started.
        Raises ``ConfigError`` naming the address and the setting.
        """
        if self._socket is not None:
            return self._socket
        try:
            infos = socket.getaddrinfo(
                self.host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, _type, _proto, _name, address = infos[0]
            sock = socket.create_server(address[:2], family=family)
        except OSError as exc:
            raise ConfigError(
                [
                    ConfigProblem(
                        "http",
                        f"cannot listen on {self.host}:{self._port} ({exc.strerror or exc}); "
                        "set http.host / http.port (EVENTBUS_HTTP__PORT) to a free address",
                    )
                ]
            ) from None
        sock.setblocking(False)
        self._port = sock.getsockname()[1]
        self._socket = sock
        return sock
