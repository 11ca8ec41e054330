"""The HTTP surface of a worker: live feed, dashboard, probes, metrics.

Routes (``create_app``):

=========================  =====  ============================================
``GET /``                  open   the dashboard page (+ ``/static/...``)
``GET /healthz``           open   200 while no loop is stuck, else 503
``GET /readyz``            open   200 when ready and Redis answers PING, else
                                  503 with the reason
``GET /metrics``           open   Prometheus text format
``GET /v1/events/stream``  token  the live mirror as Server-Sent Events
``GET /v1/deliveries``     token  recent delivery records (newest first;
                                  ``?status=``, ``?channel=``,
                                  ``?subscription=``, ``?event=<id>``,
                                  ``?history=true`` adds every attempt)
``/v1/silences``           token  list, make and end silences (``.silences``)
``/v1/alerts``             token  list, acknowledge, resolve alerts (``.alerts``)
``GET /v1/whoami``         token  the token's name, teams and role
``/v1/channels``,          token  per-team channels and subscriptions, audit
``/v1/subscriptions``,            (``.console``)
``/v1/audit``
=========================  =====  ============================================

``POST /v1/deliveries/{id}/resend`` (token with ``role: operate``) sends a
delivery again (``.resend``).

Token-protected routes take ``Authorization: Bearer <token>`` or
``?token=<token>`` (see ``consumers.server.auth``) and are scoped to the
token's teams: ``?team=a,b`` narrows the scope, and a team outside the token
is 403. Error bodies are JSON ``{"error": "..."}`` and never echo a token.
"""

from __future__ import annotations

import asyncio
import importlib.resources
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consumers.health import Health
from consumers.metrics import Metrics
from consumers.resend import Resend
from consumers.store import DeliveryStatus, DeliveryStore, SilenceStore
from eventbus.errors import BrokerUnavailable
from eventbus.keys import Keys
from eventbus.settings import ApiToken, Settings

from .alerts import alert_routes
from .auth import Principal, TokenAuth, split_param
from .channel_health import channel_health_routes
from .console import console_of, console_routes
from .live import OUTCOMES, LiveFilter, LiveHub, parse_types
from .resend import resend_routes
from .silences import silence_routes
from .sse import LiveResponse, live_response

__all__ = ["create_app", "set_tokens"]

log = structlog.get_logger(__name__)

_JS = "text/javascript; charset=utf-8"
# The page's ES modules (dashboard.js imports the others) and its style sheet.
_ASSETS = {
    "dashboard.js": _JS,
    **{
        f"dash-{view}.js": _JS
        for view in (
            "alerts",
            "channels",
            "chart",
            "deliveries",
            "silences",
            "subscriptions",
            "util",
        )
    },
    "dashboard.css": "text/css; charset=utf-8",
}
# Everything the page needs comes from this server; nothing inline.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_MAX_DELIVERIES = 500


class _Api:
    def __init__(
        self,
        settings: Settings,
        *,
        redis: aioredis.Redis,
        health: Health,
        metrics: Metrics,
        store: DeliveryStore,
        hub: LiveHub,
        ping_timeout: float,
    ) -> None:
        self.http = settings.http
        self.redis = redis
        self.health = health
        self.metrics = metrics
        self.store = store
        self.hub = hub
        self.ping_timeout = ping_timeout
        self.auth = TokenAuth(settings.http.tokens)
        package = importlib.resources.files(__package__ or "consumers.server")
        self.page = (package / "dashboard.html").read_bytes()
        self.page_without_tokens = self.page.replace(b"<body>", b'<body data-tokens="none">', 1)
        self.assets = {name: (package / name).read_bytes() for name in _ASSETS}

    # -- open routes --------------------------------------------------------

    async def dashboard(self, request: Request) -> Response:
        # With no token configured the page can only say so (it cannot connect).
        page = self.page if self.auth.configured else self.page_without_tokens
        return Response(page, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.assets:
            raise HTTPException(404, "not found")
        return Response(self.assets[name], media_type=_ASSETS[name], headers=_PAGE_HEADERS)

    async def healthz(self, request: Request) -> Response:
        stuck = self.health.stuck()
        if stuck:
            return JSONResponse({"status": "stuck", "stuck": stuck}, status_code=503)
        return JSONResponse({"status": "alive"})

    async def readyz(self, request: Request) -> Response:
        reason = self.health.ready_reason
        if reason is None:
            reason = await self._ping()
        if reason is None:
            reason = self.hub.not_ready()
        if reason is not None:
            return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def _ping(self) -> str | None:
        try:
            async with asyncio.timeout(self.ping_timeout):
                await self.redis.ping()
        except TimeoutError:
            return f"Redis did not answer PING within {self.ping_timeout:g}s"
        except Exception as exc:  # any failure means "not ready"; the reason says which
            log.warning("readyz.ping_failed", error=str(exc))
            return f"Redis is unreachable ({type(exc).__name__})"
        return None

    async def metrics_text(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- token routes -------------------------------------------------------

    async def stream(self, request: Request) -> LiveResponse:
        principal = self.auth.authenticate(request)
        live_filter = _live_filter(request, principal)
        last_id = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        try:
            return live_response(
                self.hub,
                live_filter,
                last_event_id=last_id or None,
                heartbeat=self.http.heartbeat,
                replay_limit=self.http.replay_limit,
                client_name=principal.name,
            )
        except ValueError as exc:
            raise HTTPException(400, f"bad last event id: {exc}") from None
        except BrokerUnavailable:
            raise HTTPException(
                503, "the live mirror is unavailable; retry shortly", headers={"Retry-After": "2"}
            ) from None

    async def deliveries(self, request: Request) -> Response:
        principal = self.auth.authenticate(request)
        teams = principal.scope(split_param(request.query_params.getlist("team"), "team"))
        limit = _int_param(request, "limit", default=50, low=1, high=_MAX_DELIVERIES)
        status = request.query_params.get("status") or None
        if status is not None and status not in {s.value for s in DeliveryStatus}:
            raise HTTPException(400, f"unknown status {status[:20]!r}")
        query = request.query_params
        history = query.get("history", "").lower() in {"1", "true", "yes"}
        try:
            records = await self.store.query(
                status=status,
                channel=query.get("channel") or None,
                subscription=query.get("subscription") or None,
                event_id=query.get("event") or None,
                teams=teams,
                limit=limit,
                history=history,
            )
        except BrokerUnavailable:
            raise HTTPException(503, "Redis is unreachable; retry shortly") from None
        rows: list[dict[str, Any]] = []
        for record in records:
            data = record.to_dict()
            if not history:
                data.pop("history", None)
            data.pop("payload", None)  # the event of a failed one, kept for a resend
            rows.append(data)
        return JSONResponse({"deliveries": rows})


def _live_filter(request: Request, principal: Principal) -> LiveFilter:
    query = request.query_params
    teams = principal.scope(split_param(query.getlist("team"), "team"))
    try:
        types = parse_types(split_param(query.getlist("type"), "type"))
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    outcomes = split_param(query.getlist("outcome"), "outcome")
    for outcome in outcomes:
        if outcome not in OUTCOMES:
            raise HTTPException(
                400, f"unknown outcome {outcome[:20]!r}: use success, error or none"
            )
    return LiveFilter(teams, types, frozenset(outcomes) if outcomes else None)


def _int_param(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise HTTPException(400, f"{name} must be between {low} and {high}")
    return value


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(
    settings: Settings,
    *,
    redis: aioredis.Redis,
    health: Health,
    metrics: Metrics,
    store: DeliveryStore,
    hub: LiveHub,
    ping_timeout: float = 2.0,
) -> Starlette:
    """The Starlette app. It only uses what it is given: starting and
    stopping the ``hub`` (and closing ``redis``) is the caller's job."""
    api = _Api(
        settings,
        redis=redis,
        health=health,
        metrics=metrics,
        store=store,
        hub=hub,
        ping_timeout=ping_timeout,
    )
    console = console_of(settings, redis)
    routes = [
        Route("/", api.dashboard, methods=["GET"]),
        Route("/static/{name}", api.asset, methods=["GET"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        Route("/metrics", api.metrics_text, methods=["GET"]),
        Route("/v1/events/stream", api.stream, methods=["GET"]),
        Route("/v1/deliveries", api.deliveries, methods=["GET"]),
        *silence_routes(lambda: api.auth, SilenceStore(redis, Keys(settings.broker.prefix))),
        *alert_routes(lambda: api.auth, settings, redis),
        *resend_routes(
            lambda: api.auth,
            Resend(
                redis,
                Keys(settings.broker.prefix),
                settings.consumer.record_ttl,
                partitions=settings.broker.partitions,
            ),
        ),
        *console_routes(lambda: api.auth, console),
        *channel_health_routes(lambda: api.auth, console, redis),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.hub = hub
    app.state.api = api
    return app


def set_tokens(app: Starlette, tokens: Sequence[ApiToken]) -> None:
    """Replace the accepted tokens of an app built by ``create_app`` (config reload).

    Open streams are ended so that every client authenticates again: one
    whose token was revoked gets 401 on reconnect.
    """
    api: _Api = app.state.api
    api.auth = TokenAuth(tokens)
    api.hub.close_streams("API tokens changed")
