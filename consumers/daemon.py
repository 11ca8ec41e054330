"""Wiring one worker process: broker, HTTP client, channels, worker, signals.

Everything is opened in ``Daemon.run`` under one ``AsyncExitStack`` and closed
in reverse order. SIGTERM/SIGINT stop the worker gracefully (a second signal
cancels at once); SIGHUP reloads channels and subscriptions from the YAML,
keeping the old configuration if the new one is invalid.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import signal
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import redis.asyncio as aioredis
import structlog

from eventbus.brokers.redis_streams import connect, translated
from eventbus.config import load_settings
from eventbus.errors import ConfigError
from eventbus.keys import Keys
from eventbus.logs import set_log_redactor
from eventbus.redaction import Redactor
from eventbus.secrets import configured_secrets
from eventbus.settings import Settings, read_environ

from .channels.base import Channel, ChannelDeps, channel_redactor
from .channels.registry import build_channels
from .console import ConsoleFeed, ConsoleStore
from .health import Health
from .metrics import Metrics
from .sdnotify import Notifier, watchdog_loop
from .server import HttpServer
from .validation import channel_problems, subscription_problems
from .worker import Worker

if TYPE_CHECKING:
    from eventbus.brokers.rabbitmq import RabbitMQ

__all__ = ["Daemon", "make_channel_deps"]

log = structlog.get_logger("eventbus.daemon")


def make_channel_deps(settings: Settings, http: httpx.AsyncClient) -> ChannelDeps:
    return ChannelDeps(
        http=http, security=settings.security, timeout=settings.consumer.delivery_timeout
    )


def make_http_client(settings: Settings) -> httpx.AsyncClient:
    """The shared production client (fast transport + private-target guard)."""
    from .outbound import make_http_client as make

    return make(settings.security, timeout=settings.consumer.delivery_timeout)


def _restart_only(old: Settings, new: Settings) -> list[str]:
    """Sections that changed but shape the running process, so a reload cannot apply them."""
    sections: dict[str, tuple[object, object]] = {
        "broker": (old.broker, new.broker),
        "http.host": (old.http.host, new.http.host),
        "http.port": (old.http.port, new.http.port),
        # The private-target guard lives in the shared HTTP client.
        "security": (old.security, new.security),
    }
    for name in type(new.consumer).model_fields:
        if name not in _RELOADABLE_CONSUMER:
            sections[f"consumer.{name}"] = (
                getattr(old.consumer, name),
                getattr(new.consumer, name),
            )
    return [name for name, (before, after) in sections.items() if before != after]


# Read per delivery from the current settings, so a reload applies them.
_RELOADABLE_CONSUMER = frozenset(
    {"retry_schedule", "retry_jitter", "retry_after_max", "delivery_timeout"}
)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        config_path: str | Path | None = None,
        overrides: Mapping[str, object] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.overrides = dict(overrides or {})
        self.environ = dict(environ) if environ is not None else None
        self.metrics = Metrics()
        self.health = Health()
        self.worker: Worker | None = None
        self.console: ConsoleFeed | None = None
        self._http: httpx.AsyncClient | None = None
        self._signals = 0
        self._server: HttpServer | None = None
        self.started = asyncio.Event()
        self.notifier = Notifier.from_environ(
            self.environ if self.environ is not None else read_environ()
        )

    async def run(self) -> None:
        """Run until stopped by a signal (or ``stop()``)."""
        settings = self.settings
        async with AsyncExitStack() as stack:
            redis = connect(
                settings.broker.redis_url.get_secret_value(),
                socket_timeout=max(settings.broker.socket_timeout, settings.consumer.block + 5),
            )
            stack.push_async_callback(redis.aclose)
            async with translated("connect"):
                await redis.ping()
            self._http = make_http_client(settings)
            stack.push_async_callback(self._http.aclose)
            channels = build_channels(settings, make_channel_deps(settings, self._http))
            _redact_logs(settings, channels)
            self.console = self._console_feed(redis, self._http)
            rabbitmq = await self._rabbitmq(stack)
            worker = _worker(
                settings,
                redis=redis,
                broker=rabbitmq,
                channels=channels,
                metrics=self.metrics,
                health=self.health,
                console=self.console,
            )
            self.worker = worker
            self.console.apply = self._apply
            server = self._http_server(redis, worker, rabbitmq)
            if server is not None:
                server.bind()  # a port in use stops us before the worker is announced
                stack.push_async_callback(server.stop)
            await worker.start()
            if server is not None:
                await self._start_http(stack, server)
            self._install_signals(stack)
            self._start_watchdog(stack)
            log.info(
                "daemon.ready",
                broker=settings.broker.redis_url_redacted
                if rabbitmq is None
                else rabbitmq.url_redacted,
                prefix=settings.broker.prefix,
                channels=sorted(channels),
            )
            group = settings.consumer.group
            source = worker.keys.events if rabbitmq is None else rabbitmq.topology.queue(group)
            self.notifier.ready(f"consuming {source} as {worker.name}")
            # What start-up built lives as long as the process: keep it out of
            # the garbage collector's full passes (a few % of the hot path).
            gc.freeze()
            self.started.set()
            try:
                await worker.run()
            finally:
                self.notifier.stopping()
                self.notifier.close()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    async def reload(self) -> bool:
        """Reload channels and subscriptions; keep the old ones if the new are invalid."""
        if self.worker is None or self._http is None:
            return False
        try:
            # Off the event loop: parsing and validating a large file (or a
            # hostile one, until it is refused) must not stall deliveries.
            settings = await asyncio.to_thread(
                functools.partial(
                    load_settings,
                    self.config_path,
                    environ=self.environ,
                    channel_validator=channel_problems,
                    subscription_validator=subscription_problems,
                    **self.overrides,
                )
            )
        except ConfigError as exc:
            log.error("config.reload_failed", problems=[str(p) for p in exc.problems])
            self.notifier.ready("reload failed; kept the previous configuration")
            return False
        channels: Mapping[str, Channel] = build_channels(
            settings, make_channel_deps(settings, self._http)
        )
        _redact_logs(settings, channels)
        kept = _restart_only(self.settings, settings)
        if kept:
            log.warning(
                "config.restart_needed",
                settings=kept,
                hint="these take effect at the next start; the running values are kept",
            )
        self.settings = settings
        if self.console is not None:  # the API-defined items join the new YAML
            self.console.rebase(settings)
        else:
            self.worker.reconfigure(settings, channels)
        if self._server is not None:
            self._server.set_tokens(settings.http.tokens)
        # What the old configuration built may be cyclic garbage now, and the
        # frozen start-up heap is never collected: thaw, collect, freeze again.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.notifier.ready(f"reloaded: {len(channels)} channels")
        log.info(
            "config.reloaded", channels=sorted(channels), subscriptions=len(settings.subscriptions)
        )
        return True

    # -- pieces ------------------------------------------------------------------

    def _console_feed(self, redis: aioredis.Redis, http: httpx.AsyncClient) -> ConsoleFeed:
        settings = self.settings
        store = ConsoleStore(redis, Keys(settings.broker.prefix), settings.security)
        return ConsoleFeed(
            store, settings, lambda merged: build_channels(merged, make_channel_deps(merged, http))
        )

    def _apply(self, settings: Settings, channels: Mapping[str, Channel]) -> None:
        """A change of the API-defined items (or a reload): the worker takes the whole set."""
        _redact_logs(settings, channels)
        if self.worker is not None:
            self.worker.reconfigure(settings, channels)

    async def _rabbitmq(self, stack: AsyncExitStack) -> RabbitMQ | None:
        """With ``broker.kind: rabbitmq``, the started RabbitMQ broker (events flow there)."""
        if self.settings.broker.kind != "rabbitmq":
            return None
        from eventbus.brokers.rabbitmq import RabbitMQ

        return await stack.enter_async_context(RabbitMQ.from_settings(self.settings))

    def _http_server(
        self, redis: aioredis.Redis, worker: Worker, rabbitmq: RabbitMQ | None
    ) -> HttpServer | None:
        if not self.settings.http.enabled:
            return None
        return HttpServer(
            self.settings,
            redis=redis,
            health=self.health,
            metrics=self.metrics,
            store=worker.store,
            live=rabbitmq,
        )

    async def _start_http(self, stack: AsyncExitStack, server: HttpServer) -> None:
        await server.start()
        self._server = server

    def _start_watchdog(self, stack: AsyncExitStack) -> None:
        if not self.notifier.enabled:
            return
        status = asyncio.create_task(self._status_loop())
        stack.callback(status.cancel)
        if self.notifier.watchdog_interval() is None:
            return
        task = asyncio.create_task(watchdog_loop(self.notifier, lambda: self.health.alive))
        stack.callback(task.cancel)

    async def _status_loop(self, every: float = 15.0) -> None:
        """Keep ``systemctl status`` showing progress (STATUS=)."""
        while True:
            await asyncio.sleep(every)
            worker = self.worker
            if worker is None:
                continue
            self.notifier.status(
                f"{worker.processed} processed, {worker.in_flight} in flight"
                + ("" if self.health.ready_reason is None else f"; {self.health.ready_reason}")
            )

    def _install_signals(self, stack: AsyncExitStack) -> None:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()

        def on_stop(signame: str) -> None:
            self._signals += 1
            if self._signals == 1:
                log.info("signal.received", signal=signame, action="draining")
                self.stop()
            else:
                log.warning("signal.received", signal=signame, action="exiting now")
                if main is not None:
                    main.cancel()

        def on_hup() -> None:
            log.info("signal.received", signal="SIGHUP", action="reloading")
            self.notifier.reloading()
            task = loop.create_task(self.reload())
            task.add_done_callback(_retrieve_exception)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_stop, sig.name)
            stack.callback(loop.remove_signal_handler, sig)
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        stack.callback(loop.remove_signal_handler, signal.SIGHUP)


def _worker(
    settings: Settings, *, redis: aioredis.Redis, broker: RabbitMQ | None, **parts: Any
) -> Worker:
    """The Redis Streams worker, or the RabbitMQ-mode one (``consumers.amqp_worker``)."""
    if broker is None:
        return Worker(settings, redis=redis, **parts)
    from .amqp_worker import AmqpWorker

    return AmqpWorker(settings, redis=redis, broker=broker, **parts)


def _retrieve_exception(task: asyncio.Task[bool]) -> None:
    # reload() logs its own failures; this only keeps asyncio from warning.
    if not task.cancelled():
        task.exception()


def _redact_logs(settings: Settings, channels: Mapping[str, Channel]) -> None:
    """Mask every configured secret in every log line, the channels' own included."""
    redactors = [configured_secrets(settings), *map(channel_redactor, channels.values())]
    set_log_redactor(Redactor.union(*redactors).mask)
