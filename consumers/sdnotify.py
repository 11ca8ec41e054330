"""The systemd notify protocol (``sd_notify(3)``), with no extra dependency.

Under ``Type=notify`` systemd passes the path of a unix datagram socket in
``NOTIFY_SOCKET``; the service sends newline-separated ``KEY=VALUE``
assignments to it: ``READY=1`` once it is serving, ``STATUS=...`` for
``systemctl status``, ``WATCHDOG=1`` at least every ``WatchdogSec``,
``RELOADING=1`` and ``STOPPING=1`` around a reload and a shutdown.

Outside systemd (no ``NOTIFY_SOCKET``) every method is a no-op, so the daemon
calls them unconditionally. Sending never raises: a notification that cannot
be delivered is logged as ``sdnotify.failed`` and dropped, since a monitoring
side channel must not take the worker down.

The environment is passed in (``Notifier.from_environ(os.environ)`` in
``main()``), never read here, so tests build notifiers from plain dicts.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import TypeAlias

import structlog

__all__ = ["Notifier", "watchdog_loop"]

log = structlog.get_logger(__name__)

Address: TypeAlias = str | bytes


class Notifier:
    """Sends notifications to the socket systemd gave us, if any.

    Build one with :meth:`from_environ`. The socket is opened lazily on the
    first send and is non-blocking: if systemd's queue is full the datagram
    is dropped (and logged) instead of stalling the event loop.
    """

    def __init__(
        self,
        address: Address | None,
        *,
        watchdog_usec: int | None = None,
    ) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, pid: int | None = None) -> Notifier:
        """A notifier configured from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and
        ``WATCHDOG_PID`` in ``environ``.

        ``NOTIFY_SOCKET`` may be a filesystem path or an abstract socket name
        starting with ``@``. The watchdog applies only when ``WATCHDOG_PID`` is
        absent or names this process (``pid``, default ``os.getpid()``):
        systemd sets it so that a child which inherited the environment does
        not ping on its parent's behalf.
        """
        address = _parse_address(environ.get("NOTIFY_SOCKET", ""))
        watchdog_usec = _parse_watchdog(environ, os.getpid() if pid is None else pid)
        return cls(address, watchdog_usec=watchdog_usec)

    @property
    def enabled(self) -> bool:
        """Whether there is a socket to notify (that is, we run under systemd)."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings: half of ``WATCHDOG_USEC``, as
        ``sd_watchdog_enabled(3)`` recommends; ``None`` when no watchdog is set."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def ready(self, status: str | None = None) -> None:
        """Startup finished (or a reload did): the service is consuming."""
        self._send("READY=1", status)

    def status(self, text: str) -> None:
        """A one-line progress message shown by ``systemctl status``."""
        self._send(None, text)

    def watchdog(self) -> None:
        """Tell the watchdog the service is alive."""
        self._send("WATCHDOG=1", None)

    def reloading(self, status: str | None = None) -> None:
        """A configuration reload began; send :meth:`ready` once it is done.

        ``MONOTONIC_USEC`` lets systemd (``Type=notify-reload``) match the
        message to the reload it asked for.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}", status)

    def stopping(self, status: str | None = None) -> None:
        """Shutdown began (in-flight work is draining)."""
        self._send("STOPPING=1", status)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, assignments: str | None, status: str | None) -> None:
        if self._address is None:
            return
        lines = [assignments] if assignments else []
        if status is not None:
            # A newline would start a new assignment, so a status text could
            # otherwise forge READY=1 or worse.
            lines.append("STATUS=" + " ".join(status.splitlines()))
        message = "\n".join(lines)
        try:
            if self._sock is None:
                self._sock = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            self._sock.sendto(message.encode(), self._address)
        except OSError as exc:
            log.warning(
                "sdnotify.failed",
                message=message.split("\n", 1)[0],
                socket=_printable(self._address),
                error=f"{type(exc).__name__}: {exc}",
            )

    def __repr__(self) -> str:
        target = _printable(self._address) if self._address is not None else "disabled"
        return f"<Notifier {target} watchdog_usec={self._watchdog_usec}>"


def _parse_address(value: str) -> Address | None:
    if not value:
        return None
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        # Linux abstract namespace: a leading NUL byte instead of the "@".
        return b"\0" + value[1:].encode()
    # e.g. systemd's "vsock:CID:PORT" (for VMs); not something a worker meets.
    log.warning("sdnotify.unsupported_socket", socket=value)
    return None


def _parse_watchdog(environ: Mapping[str, str], pid: int) -> int | None:
    raw_usec = environ.get("WATCHDOG_USEC", "")
    if not raw_usec:
        return None
    raw_pid = environ.get("WATCHDOG_PID", "")
    try:
        usec = int(raw_usec)
        if raw_pid and int(raw_pid) != pid:
            return None
    except ValueError:
        log.warning("sdnotify.bad_watchdog", watchdog_usec=raw_usec, watchdog_pid=raw_pid)
        return None
    return usec if usec > 0 else None


def _printable(address: Address) -> str:
    if isinstance(address, bytes):
        return "@" + address[1:].decode(errors="replace")
    return address


async def watchdog_loop(
    notifier: Notifier,
    is_healthy: Callable[[], bool],
    *,
    interval: float | None = None,
) -> None:
    """Ping ``WATCHDOG=1`` every ``interval`` seconds while ``is_healthy()``.

    ``interval`` defaults to :meth:`Notifier.watchdog_interval`; without a
    watchdog this returns at once. ``is_healthy`` should say whether the main
    loop made progress recently (for instance, its last iteration is younger
    than the watchdog timeout): while it is false no ping is sent, so a
    worker whose read loop is stuck, though its event loop still runs, is
    killed and restarted by systemd. A blocked event loop stops the pings by
    itself. Runs until cancelled.
    """
    if interval is None:
        interval = notifier.watchdog_interval()
    if interval is None or not notifier.enabled:
        return
    withheld = False
    while True:
        try:
            healthy = is_healthy()
        except Exception:
            # A broken health check counts as unhealthy: systemd restarts us.
            log.exception("sdnotify.health_check_failed")
            healthy = False
        if healthy:
            if withheld:
                log.info("sdnotify.watchdog_resumed")
                withheld = False
            notifier.watchdog()
        elif not withheld:
            log.warning("sdnotify.watchdog_withheld", reason="main loop unhealthy")
            withheld = True
        await asyncio.sleep(interval)
