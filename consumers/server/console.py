"""Channels, subscriptions and their audit over HTTP, per team.

======================================  =====================================
``GET /v1/channels``                    the YAML's (``"source": "config"``)
                                        and the token's teams' own
``POST /v1/channels``                   add one (``operate``): 201; 422 lists
                                        every problem
``GET /v1/channels/{name}``             one, secrets masked
``PATCH /v1/channels/{name}``           change fields (JSON merge patch;
                                        echoing a mask keeps the secret)
``DELETE /v1/channels/{name}``          remove it: 200 with what it was
``POST /v1/channels/{name}/test``       a test notification (``operate``)
``/v1/channels/{name}/health``,         per-minute attempts, circuit, and
``.../enable``, ``.../disable``         the switch (``.channel_health``)
``/v1/subscriptions[/{name}]``          the same, without ``test``
``GET /v1/audit``                       who changed what, newest first
======================================  =====================================

Bodies have exactly the YAML's fields; a channel also takes ``team`` (the
owner; optional for a token of one team). An item of a team outside the
token is 404, as one that does not exist. Reading needs any token; changing
needs ``role: operate`` (403 otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import redis.asyncio as aioredis
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eventbus.errors import BrokerError
from eventbus.keys import Keys
from eventbus.settings import Settings

from ..console import Console, ConsoleError, ConsoleStore
from ..testsend import send_test
from .auth import Principal, TokenAuth
from .bodies import json_object

__all__ = ["console_endpoint", "console_of", "console_routes"]

_MAX_BODY: Final = 64 * 1024
_PATHS: Final = {"channel": "/v1/channels", "subscription": "/v1/subscriptions"}


class _Routes:
    def __init__(self, auth: Callable[[], TokenAuth], console: Console) -> None:
        self.auth = auth  # read per request: a reload swaps the tokens
        self.console = console

    def _who(self, request: Request, action: str | None = None) -> Principal:
        principal = self.auth().authenticate(request)
        if action is not None:
            principal.require_operate(action)
        return principal

    async def list(self, request: Request) -> Response:
        kind = request.scope["console_kind"]
        principal = self._who(request)
        rows = await self.console.items(kind, principal.teams)
        return JSONResponse({kind + "s": rows})

    async def create(self, request: Request) -> Response:
        kind = request.scope["console_kind"]
        principal = self._who(request, f"adding a {kind}")
        body = await _body(request)
        team = _team(body, principal, kind)
        if kind == "channel":
            body.pop("team", None)
        view = await self.console.create(kind, body, team, principal.name)
        headers = {"Location": f"{_PATHS[kind]}/{view['name']}"}
        return JSONResponse(view, status_code=201, headers=headers)

    async def get(self, request: Request) -> Response:
        kind = request.scope["console_kind"]
        principal = self._who(request)
        view = await self.console.show(kind, request.path_params["name"], principal.teams)
        return JSONResponse(view)

    async def patch(self, request: Request) -> Response:
        kind = request.scope["console_kind"]
        principal = self._who(request, f"changing a {kind}")
        body = await _body(request)
        view = await self.console.update(
            kind, request.path_params["name"], body, principal.teams, principal.name
        )
        return JSONResponse(view)

    async def delete(self, request: Request) -> Response:
        kind = request.scope["console_kind"]
        principal = self._who(request, f"removing a {kind}")
        view = await self.console.delete(
            kind, request.path_params["name"], principal.teams, principal.name
        )
        return JSONResponse(view)

    async def test(self, request: Request) -> Response:
        principal = self._who(request, "testing a channel")
        name = request.path_params["name"]
        shown = await self.console.show("channel", name, principal.teams)  # 404 if hidden
        if shown["source"] == "config" and principal.teams is not None:
            raise ConsoleError(
                403, f"channel {name!r} is the configuration's: only an admin token tests it"
            )
        settings = await self.console.merged(principal.teams)
        result = await send_test(settings, name)
        return JSONResponse(
            {
                "channel": name,
                "ok": result.ok,
                "outcome": result.outcome.value,
                "status": result.status,
                "latency_ms": round(result.latency * 1000),
                "error": result.error,
            },
            status_code=200 if result.ok else 502,
        )

    async def audit(self, request: Request) -> Response:
        """Newest first; ``?team=T`` narrows to one of the token's teams, ``?limit=N`` (1-1000)."""
        principal = self._who(request)
        teams = principal.teams
        team = request.query_params.get("team")
        if team is not None:
            if not principal.allows(team):
                raise HTTPException(403, f"token {principal.name!r} may not read team {team!r}")
            teams = frozenset({team})
        raw = request.query_params.get("limit", "100")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= _AUDIT_MOST:
            raise HTTPException(
                400, f"limit must be an integer from 1 to {_AUDIT_MOST}, not {raw[:8]!r}"
            )
        rows = await self.console.store.audit(teams, int(raw))
        return JSONResponse({"audit": rows})


_AUDIT_MOST = 1000


def _team(body: dict[str, Any], principal: Principal, kind: str) -> str:
    team = body.get("team")
    if team is None and principal.teams is not None and len(principal.teams) == 1:
        [team] = principal.teams
    if not isinstance(team, str) or not team:
        raise HTTPException(422, f'say which team the {kind} belongs to: add "team" to the body')
    if team == "*" and principal.teams is not None:
        raise HTTPException(403, f"token {principal.name!r} may not make a {kind} for every team")
    if not principal.allows(team):
        raise HTTPException(403, f"token {principal.name!r} may not change team {team!r}")
    return team


async def _body(request: Request) -> dict[str, Any]:
    body = await json_object(request, limit=_MAX_BODY, example='{"name": ...}')
    return body


def console_endpoint(kind: str, endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
    async def bound(request: Request) -> Response:
        request.scope["console_kind"] = kind
        try:
            response: Response = await endpoint(request)
        except ConsoleError as exc:
            payload: dict[str, Any] = {"error": exc.message}
            if exc.problems:
                payload["problems"] = exc.problems
            return JSONResponse(payload, status_code=exc.status)
        except BrokerError:
            raise HTTPException(
                503, "Redis is unreachable; retry shortly", headers={"Retry-After": "2"}
            ) from None
        return response

    return bound  # ConsoleError and BrokerError become JSON answers


def console_of(settings: Settings, redis: aioredis.Redis) -> Console:
    """The console over ``redis`` with the YAML items of ``settings``."""
    store = ConsoleStore(redis, Keys(settings.broker.prefix), settings.security)
    return Console(settings, store)


def console_routes(auth: Callable[[], TokenAuth], console: Console) -> list[Route]:
    """The routes, for ``create_app`` to mount; ``auth`` gives the current tokens."""
    api = _Routes(auth, console)
    routes = [Route("/v1/audit", console_endpoint("audit", api.audit), methods=["GET"])]
    for kind, path in _PATHS.items():
        routes += [
            Route(path, console_endpoint(kind, api.list), methods=["GET"]),
            Route(path, console_endpoint(kind, api.create), methods=["POST"]),
            Route(path + "/{name}", console_endpoint(kind, api.get), methods=["GET"]),
            Route(path + "/{name}", console_endpoint(kind, api.patch), methods=["PATCH"]),
            Route(path + "/{name}", console_endpoint(kind, api.delete), methods=["DELETE"]),
        ]
    routes.append(
        Route("/v1/channels/{name}/test", console_endpoint("channel", api.test), methods=["POST"])
    )
    return routes
