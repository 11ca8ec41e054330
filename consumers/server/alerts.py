"""The alerts over HTTP, for tokens of the alert's team; what a token may do.

======================================  =====================================
``GET /v1/whoami``                      the token's name, teams and role
``GET /v1/alerts``                      alerts of the token's teams, firing
                                        first (``?team=a,b``, ``?status=``,
                                        ``?limit=``)
``GET /v1/alerts/{key}?team=T``         one alert, its newest events and
                                        their delivery records
``POST /v1/alerts/{key}/ack?team=T``    acknowledge it (``role: operate``)
``POST /v1/alerts/{key}/resolve?team=T`` resolve it (``role: operate``)
======================================  =====================================

``team`` may be left out by a token of one team. An alert of a team outside
the token is 404, exactly as one that does not exist. Acknowledging and
resolving publish an event with the alert action, as ``eventbus alerts ack``
does (``consumers.alert_actions``): the answer is 202 with the event's id,
and the alert changes once a worker has taken the event in. The POST body is
optional JSON: ``by`` (who; default the token's name) and ``comment``.
A token with ``role: read`` gets 403 naming the role it needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import redis.asyncio as aioredis
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consumers.alert_actions import ActionError, Refusal, listing, operate
from consumers.store import Alert, AlertStatus, AlertStore, DeliveryStore
from eventbus.envelope import ActorType, AlertAction
from eventbus.errors import BrokerError
from eventbus.keys import Keys
from eventbus.settings import Settings
from publishers.client import Publisher

from ..store.partitioned import delivery_store
from .auth import Principal, TokenAuth, split_param
from .bodies import json_object

__all__ = ["alert_routes"]

_MAX_BODY: Final = 16 * 1024
_MAX_LIMIT: Final = 1000
_EVENTS: Final = 20
_FIELDS: Final = frozenset({"by", "comment", "team"})
_STATUS_CODES: Final = {Refusal.NOT_FOUND: 404, Refusal.CONFLICT: 409, Refusal.INVALID: 422}


class _Alerts:
    def __init__(
        self,
        auth: Callable[[], TokenAuth],
        alerts: AlertStore,
        deliveries: DeliveryStore,
        publisher: Publisher,
    ) -> None:
        self.auth = auth  # read per request: a reload swaps the tokens
        self.alerts = alerts
        self.deliveries = deliveries
        self.publisher = publisher

    async def whoami(self, request: Request) -> Response:
        principal = self.auth().authenticate(request)
        teams = ["*"] if principal.teams is None else sorted(principal.teams)
        return JSONResponse(
            {
                "name": principal.name,
                "teams": teams,
                "role": principal.role,
                "may_operate": principal.may_operate,
            }
        )

    async def list(self, request: Request) -> Response:
        principal = self.auth().authenticate(request)
        teams = principal.scope(split_param(request.query_params.getlist("team"), "team"))
        status = _status(request.query_params.get("status") or None)
        limit = _limit(request.query_params.get("limit"))
        async with _available():
            found = await listing(self.alerts, teams=teams, status=status, limit=limit)
        return JSONResponse(
            {
                "alerts": [alert.to_dict() for alert in found],
                "may_operate": principal.may_operate,
            }
        )

    async def get(self, request: Request) -> Response:
        principal = self.auth().authenticate(request)
        alert = await self._visible(request, principal, _team(request, principal, {}))
        async with _available():
            events = await self.alerts.events(alert, limit=_EVENTS)
            rows: list[dict[str, Any]] = []
            for event_id in events:
                for record in await self.deliveries.query(event_id=event_id, limit=100):
                    data = record.to_dict()
                    data.pop("history", None)
                    rows.append(data)
        return JSONResponse({"alert": alert.to_dict(), "events": events, "deliveries": rows})

    async def ack(self, request: Request) -> Response:
        return await self._act(request, AlertAction.ACKNOWLEDGE)

    async def resolve(self, request: Request) -> Response:
        return await self._act(request, AlertAction.RESOLVE)

    async def _act(self, request: Request, action: AlertAction) -> Response:
        principal = self.auth().authenticate(request)
        principal.require_operate(f"{action.value} an alert")
        body = await _body(request)
        team = _team(request, principal, body)
        await self._visible(request, principal, team)
        by, comment = body.get("by", principal.name), body.get("comment")
        if not isinstance(by, str) or not (comment is None or isinstance(comment, str)):
            raise HTTPException(422, "by and comment must be strings")
        try:
            async with _available():
                done = await operate(
                    self.alerts,
                    self.publisher,
                    team=team,
                    key=_key(request),
                    action=action,
                    by=by,
                    via="http",
                    comment=comment,
                    actor_type=ActorType.API_KEY,
                    actor_id=principal.name,
                )
        except ActionError as exc:
            raise HTTPException(_STATUS_CODES[exc.refusal], str(exc)) from None
        return JSONResponse(
            {
                "action": action.value,
                "event_id": done.event.id,
                "stream_id": done.stream_id,
                "alert": done.alert.to_dict(),
            },
            status_code=202,
        )

    async def _visible(self, request: Request, principal: Principal, team: str) -> Alert:
        key = _key(request)
        alert = None
        if principal.allows(team):
            async with _available():
                alert = await self.alerts.get(team, key)
        if alert is None:
            raise HTTPException(404, f"team {team[:60]!r} has no alert with key {key[:200]!r}")
        return alert


def _key(request: Request) -> str:
    return str(request.path_params["key"])


def _team(request: Request, principal: Principal, body: dict[str, Any]) -> str:
    """The alert's team: ``?team=``, the body's ``team``, or the token's only team."""
    team = request.query_params.get("team") or body.get("team")
    if team is None and principal.teams is not None and len(principal.teams) == 1:
        [team] = principal.teams
    if not isinstance(team, str) or not team:
        raise HTTPException(400, "say whose alert: ?team=TEAM (a token of one team may omit it)")
    return team


def _status(value: str | None) -> AlertStatus | None:
    if value is None:
        return None
    try:
        return AlertStatus(value)
    except ValueError:
        choices = ", ".join(s.value for s in AlertStatus)
        raise HTTPException(400, f"unknown status {value[:20]!r}: use {choices}") from None


def _limit(raw: str | None) -> int:
    if not raw:
        return 200
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_LIMIT:
        raise HTTPException(400, f"limit must be an integer between 1 and {_MAX_LIMIT}")
    return int(raw)


@contextlib.asynccontextmanager
async def _available() -> AsyncIterator[None]:
    """Redis errors become 503 (retry shortly)."""
    try:
        yield
    except BrokerError:
        raise HTTPException(
            503, "Redis is unreachable; retry shortly", headers={"Retry-After": "2"}
        ) from None


async def _body(request: Request) -> dict[str, Any]:
    body = await json_object(request, limit=_MAX_BODY, example='{"comment": "..."}', empty=True)
    unknown = sorted(name[:40] for name in body if name not in _FIELDS)
    if unknown:
        raise HTTPException(422, f"unknown fields {unknown}: use by, comment (and team)")
    return body


def alert_routes(
    auth: Callable[[], TokenAuth], settings: Settings, redis: aioredis.Redis
) -> list[Route]:
    """The routes, for ``create_app`` to mount; ``auth`` gives the current tokens."""
    keys = Keys(settings.broker.prefix)
    api = _Alerts(
        auth,
        AlertStore(redis, keys),
        delivery_store(redis, keys, settings.consumer.record_ttl, settings.broker.partitions),
        Publisher(settings, redis=redis),
    )
    return [
        Route("/v1/whoami", api.whoami, methods=["GET"]),
        Route("/v1/alerts", api.list, methods=["GET"]),
        Route("/v1/alerts/{key:path}/ack", api.ack, methods=["POST"]),
        Route("/v1/alerts/{key:path}/resolve", api.resolve, methods=["POST"]),
        Route("/v1/alerts/{key:path}", api.get, methods=["GET"]),
    ]
