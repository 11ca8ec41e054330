"""A blocking publisher for services that are not asyncio.

It runs the async ``Publisher`` on a private event loop in one background
thread, so both share every line of publishing logic.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from eventbus.envelope import Severity
from eventbus.errors import EventBusError
from eventbus.settings import Settings

from .alerts import ResourceLike
from .client import EventLike, Publisher

__all__ = ["SyncPublisher"]

T = TypeVar("T")


class SyncPublisher:
    """Blocking twin of ``Publisher``; use as a context manager or call ``close()``::

    with SyncPublisher.from_url("redis://localhost:6379/0") as bus:
        bus.publish({"event": "host.down", "team_id": "ops", ...})
    """

    def __init__(self, settings: Settings | None = None, **kwargs: Any) -> None:
        self._publisher = Publisher(settings, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "eventbus") -> Self:
        return cls(Settings(broker={"redis_url": url, "prefix": prefix}))

    def __repr__(self) -> str:
        return f"Sync{self._publisher!r}"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._closed:
                coro.close()
                raise EventBusError("this SyncPublisher is closed; create a new one")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="eventbus-publisher", daemon=True
                )
                self._thread.start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def publish(self, event: EventLike) -> str:
        return self._run(self._publisher.publish(event))

    def publish_many(self, events: Iterable[EventLike]) -> list[str]:
        return self._run(self._publisher.publish_many(list(events)))

    def publish_transient(self, event: EventLike) -> int:
        return self._run(self._publisher.publish_transient(event))

    def trigger_alert(
        self,
        team: str,
        key: str,
        *,
        event: str,
        resource: ResourceLike,
        severity: Severity | str | None = None,
        error: str | None = None,
        metadata: Mapping[str, str] | None = None,
        actor: Mapping[str, str] | None = None,
    ) -> str:
        """``Publisher.trigger_alert``, blocking."""
        return self._run(
            self._publisher.trigger_alert(
                team,
                key,
                event=event,
                resource=resource,
                severity=severity,
                error=error,
                metadata=metadata,
                actor=actor,
            )
        )

    def acknowledge_alert(
        self,
        team: str,
        key: str,
        *,
        event: str,
        resource: ResourceLike,
        by: str | None = None,
        comment: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """``Publisher.acknowledge_alert``, blocking."""
        return self._run(
            self._publisher.acknowledge_alert(
                team, key, event=event, resource=resource, by=by, comment=comment, metadata=metadata
            )
        )

    def resolve_alert(
        self,
        team: str,
        key: str,
        *,
        event: str,
        resource: ResourceLike,
        comment: str | None = None,
        metadata: Mapping[str, str] | None = None,
        actor: Mapping[str, str] | None = None,
    ) -> str:
        """``Publisher.resolve_alert``, blocking."""
        return self._run(
            self._publisher.resolve_alert(
                team,
                key,
                event=event,
                resource=resource,
                comment=comment,
                metadata=metadata,
                actor=actor,
            )
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._publisher.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
