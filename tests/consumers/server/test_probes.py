"""/healthz, /readyz, /metrics and /v1/deliveries on a real server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from consumers.health import Health
from consumers.store import Settlement
from consumers.store.commit import Committer
from consumers.store.records import Attempt, DeliveryRecord, DeliveryStatus
from eventbus.brokers.redis_streams import connect
from eventbus.keys import Keys

from .conftest import TOKEN_A, TOKEN_ADMIN, StartServer, event

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Proxy:
    """A TCP forwarder to Redis that can be taken down and brought back on its port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the port and every forwarded connection."""
        assert self._server is not None
        server, self._server = self._server, None
        server.close()
        for writer in list(self._writers):
            writer.close()  # both directions see EOF and the handlers return
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            self._tasks.discard(task)  # type: ignore[arg-type]
            return
        if self._server is None:  # stopped while connecting upstream
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)  # type: ignore[arg-type]
            return
        self._writers.update({writer, up_writer})
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()
                with contextlib.suppress(OSError, ConnectionError):
                    await w.wait_closed()
            self._tasks.discard(task)  # type: ignore[arg-type]

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[Proxy]:
    parts = urlsplit(redis_url)
    p = Proxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    await p.start()
    yield p
    if p._server is not None:
        await p.stop()


@pytest.fixture
async def via_proxy(proxy: Proxy, redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client like the worker's, reaching Redis through ``proxy``.

    Request it before ``start_server`` so that servers stop before it closes.
    """
    parts = urlsplit(redis_url)
    client = connect(f"redis://127.0.0.1:{proxy.port}{parts.path or '/0'}", socket_timeout=2)
    yield client
    await client.aclose()


async def test_healthz_reports_stuck_loops(start_server: StartServer) -> None:
    clock = Clock()
    health = Health(clock=clock)
    app = await start_server(health=health)
    health.beat("reader", allowance=10)
    response = await app.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "alive"})
    clock.now += 11
    response = await app.client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["stuck"] == ["reader"]
    health.beat("reader", allowance=10)
    assert (await app.client.get("/healthz")).status_code == 200


async def test_readyz_follows_the_worker(start_server: StartServer) -> None:
    app = await start_server()
    assert (await app.client.get("/readyz")).json() == {"status": "ready"}
    app.health.set_ready("consumer group not created yet")
    response = await app.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "consumer group not created yet"


async def test_readiness_flips_when_redis_is_unreachable_and_recovers(
    proxy: Proxy, via_proxy: aioredis.Redis, start_server: StartServer
) -> None:
    app = await start_server(client=via_proxy)
    assert (await app.client.get("/readyz")).status_code == 200

    await proxy.stop()  # Redis is now behind a closed port
    response = await app.client.get("/readyz")
    assert response.status_code == 503
    assert "Redis" in response.json()["reason"]
    assert (await app.client.get("/healthz")).status_code == 200  # alive, not ready

    await proxy.start()  # same port again
    async with asyncio.timeout(20):
        await app.server.hub.wait_connected()
    response = await app.client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})

    # The live feed works again after the hub resubscribed.
    reader = await app.stream(TOKEN_A)
    marker = event("team-a", resource="after-outage")
    await app.publisher.publish(marker)
    msg = await reader.message()
    assert marker.id in msg.data


async def test_live_streams_end_when_the_mirror_is_lost(
    proxy: Proxy, via_proxy: aioredis.Redis, start_server: StartServer
) -> None:
    app = await start_server(client=via_proxy)
    reader = await app.stream(TOKEN_A)
    await proxy.stop()
    # Live messages may be missed while Redis is away: the stream ends so
    # that the client reconnects with its Last-Event-ID.
    with pytest.raises(EOFError):
        await reader.next(timeout=20)
    response = await app.client.get("/v1/events/stream", params={"token": TOKEN_A})
    assert response.status_code == 503
    assert response.headers["retry-after"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_metrics_parse_and_move(start_server: StartServer) -> None:
    app = await start_server()
    response = await app.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    before = samples(response.text)
    assert before[("eventbus_sse_clients", ())] == 0
    assert before[("eventbus_sse_dropped_total", ())] == 0
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "eventbus_events_consumed",
        "eventbus_deliveries",
        "eventbus_deliveries_failed",
        "eventbus_delivery_seconds",
        "eventbus_stream_lag",
        "eventbus_stream_pending",
        "eventbus_retries_scheduled",
        "eventbus_dead_letters",
        "eventbus_publish_errors",
    } <= names

    readers = [await app.stream(TOKEN_A), await app.stream(TOKEN_ADMIN)]  # keep them open
    # What the worker does as deliveries happen:
    app.metrics.attempted("webhook", "delivered", 0.12, channel="ops-hook")
    app.metrics.failed("webhook", "ops-hook")
    app.metrics.events_consumed.inc()

    after = samples((await app.client.get("/metrics")).text)
    assert after[("eventbus_sse_clients", ())] == len(readers)
    labels = (
        ("channel", "ops-hook"),
        ("channel_type", "webhook"),
    )  # sorted, as samples() keeps them
    assert after[("eventbus_deliveries_total", (*labels, ("outcome", "delivered")))] == 1
    assert after[("eventbus_deliveries_failed_total", labels)] == 1
    assert after[("eventbus_events_consumed_total", ())] == 1
    for (_name, labels), _value in after.items():
        for _label, value in labels:
            assert "secret" not in value


async def write_record(
    redis: aioredis.Redis,
    keys: Keys,
    team: str,
    n: int,
    status: DeliveryStatus = DeliveryStatus.DELIVERED,
) -> None:
    """Record a delivery the way the worker does (through the commit script)."""
    record = DeliveryRecord(
        id=f"msg_{team}_{n}",
        event_id=f"ev{n}",
        event_type="capsule.create",
        team_id=team,
        subscription="ops-webhook",
        channel="hook",
        channel_type="webhook",
        status=status,
        attempts=1,
        last_status=200,
    )
    record.history = [
        Attempt(number=1, at=record.updated_at, duration=0.01, outcome="delivered", status=200)
    ]
    committer = Committer(redis, keys, group="delivery", ttl=3600)
    await committer.commit([Settlement(records=[record])], now=record.updated_at)


async def test_deliveries_are_scoped_by_token(
    start_server: StartServer, redis: aioredis.Redis, prefix: str
) -> None:
    app = await start_server()
    for n in range(3):
        await write_record(redis, Keys(prefix), "team-a", n)
        await write_record(redis, Keys(prefix), "team-b", n, DeliveryStatus.FAILED)

    response = await app.client.get(
        "/v1/deliveries", headers={"Authorization": f"Bearer {TOKEN_A}"}
    )
    assert response.status_code == 200
    rows = response.json()["deliveries"]
    assert len(rows) == 3
    assert {r["team_id"] for r in rows} == {"team-a"}
    assert "history" not in rows[0]

    admin = {"Authorization": f"Bearer {TOKEN_ADMIN}"}
    rows = (await app.client.get("/v1/deliveries", headers=admin)).json()["deliveries"]
    assert len(rows) == 6
    rows = (
        await app.client.get(
            "/v1/deliveries", params={"status": "failed", "limit": 2}, headers=admin
        )
    ).json()["deliveries"]
    assert [r["team_id"] for r in rows] == ["team-b", "team-b"]

    for params, status in [
        ({"team": "team-b"}, 403),
        ({"limit": "0"}, 400),
        ({"limit": "many"}, 400),
        ({"status": "lost"}, 400),
    ]:
        response = await app.client.get(
            "/v1/deliveries", params=params, headers={"Authorization": f"Bearer {TOKEN_A}"}
        )
        assert response.status_code == status, params
    assert (await app.client.get("/v1/deliveries")).status_code == 401


async def test_dashboard_page_and_assets(start_server: StartServer) -> None:
    app = await start_server()
    page = await app.client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/dashboard.js"' in page.text
    for name, kind in [("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")]:
        asset = await app.client.get(f"/static/{name}")
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith(kind)
    assert (await app.client.get("/static/../app.py")).status_code == 404
    assert (await app.client.get("/static/secrets.js")).status_code == 404


async def test_port_in_use_is_a_clear_config_error(start_server: StartServer) -> None:
    from consumers.metrics import Metrics
    from consumers.server import HttpServer
    from eventbus.errors import ConfigError

    app = await start_server()
    settings = app.settings.model_copy(
        update={"http": app.settings.http.model_copy(update={"port": app.server.port})}
    )
    other = HttpServer(settings, redis=app.server.hub.redis, health=Health(), metrics=Metrics())
    with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
        await other.start()
    await other.stop()
    assert isinstance(app.client, httpx.AsyncClient)


async def test_no_tokens_warns_at_start_and_every_request_says_how_to_make_one(
    start_server: StartServer,
) -> None:
    with capture_logs() as logs:
        app = await start_server(tokens=[])
    assert "http.no_tokens" in [line["event"] for line in logs]
    page = await app.client.get("/")
    assert b'data-tokens="none"' in page.content
    refused = await app.client.get("/v1/deliveries", headers={"Authorization": "Bearer x"})
    assert refused.status_code == 401 and "eventbus tokens new" in refused.json()["error"]
