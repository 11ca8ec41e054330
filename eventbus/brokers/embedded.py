"""An in-process Redis-protocol server (fakeredis) for first runs. Development only.

It keeps everything in memory and loses it on exit; it is never started
unless asked for (``eventbus run --embedded``, or ``--embedded-fallback`` when
no Redis answers, which ``make run`` uses).
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Self

__all__ = ["EmbeddedRedis", "redis_answers"]


def redis_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout):
            return True
    except OSError:
        return False


class EmbeddedRedis:
    """fakeredis's TCP server on loopback, in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: object | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> str:
        from fakeredis import TcpFakeServer

        server = TcpFakeServer((self.host, self.port), server_type="redis", server_version=(7, 4))
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="eventbus-embedded-redis", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        server = self._server
        if server is not None:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
