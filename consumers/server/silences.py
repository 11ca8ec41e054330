"""The silences over HTTP, for tokens of the silenced team.

=================================  ==========================================
``GET /v1/silences``               the silences in force of the token's teams
                                   (``?team=a,b`` narrows), soonest end first
``POST /v1/silences``              make one: 201 with it; 422 lists problems
``GET /v1/silences/{id}``          one silence
``DELETE /v1/silences/{id}``       end it now: 200 with it
=================================  ==========================================

The POST body is JSON: ``team`` (optional for a token of one team),
``matchers`` (``["event=host.*", "metadata.region=eu-west"]``), ``duration``
(``"2h"``, or seconds) or ``ends_at`` (RFC 3339), ``comment``, and
``created_by`` (default: the token's name). A silence of a team outside the
token is 404, exactly as one that does not exist: its existence is not
revealed. Making one for a team outside the token is 403. Making and ending
silences needs a token with ``role: operate`` (403 otherwise): a read-only
dashboard token must not be able to mute alerts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consumers.routing.silence_rules import MAX_DURATION, new_silence
from consumers.store.silences import Silence, SilenceError, SilenceStore
from eventbus.durations import parse_duration
from eventbus.errors import BrokerError

from .auth import Principal, TokenAuth, split_param
from .bodies import json_object

__all__ = ["silence_routes"]

_FIELDS: Final = frozenset({"team", "matchers", "duration", "ends_at", "comment", "created_by"})
_MAX_BODY: Final = 64 * 1024


class _Silences:
    def __init__(self, auth: Callable[[], TokenAuth], store: SilenceStore) -> None:
        self.auth = auth  # read per request: a reload swaps the tokens
        self.store = store

    async def list(self, request: Request) -> Response:
        principal = self.auth().authenticate(request)
        teams = principal.scope(split_param(request.query_params.getlist("team"), "team"))
        async with _available():
            held = (await self.store.load(time.time()))[1]
        rows = [s.to_dict() for s in held if teams is None or s.team in teams]
        return JSONResponse({"silences": rows})

    async def create(self, request: Request) -> Response:
        principal = self.auth().authenticate(request)
        principal.require_operate("making a silence")
        body = await _body(request)
        now = time.time()
        team = body.get("team")
        if team is None and principal.teams is not None and len(principal.teams) == 1:
            [team] = principal.teams
        if isinstance(team, str) and not principal.allows(team):
            raise HTTPException(403, f"token {principal.name!r} may not silence team {team!r}")
        problems = [f"unknown field {name[:40]!r}" for name in body if name not in _FIELDS]
        duration = _duration(body, now, problems)
        try:
            silence = new_silence(
                team=team,
                matchers=body.get("matchers"),
                duration=duration,
                comment=body.get("comment"),
                created_by=body.get("created_by", principal.name),
                now=now,
            )
        except SilenceError as exc:
            # A duration not given or not usable was reported above already.
            problems += [p for p in exc.problems if duration is not None or "duration" not in p]
        if problems:
            return JSONResponse(
                {"error": "the silence is not valid", "problems": problems}, status_code=422
            )
        async with _available():
            try:
                await self.store.add(silence, now)
            except SilenceError as exc:
                return JSONResponse({"error": str(exc), "problems": exc.problems}, 422)
        headers = {"Location": f"/v1/silences/{silence.id}"}
        return JSONResponse(silence.to_dict(), status_code=201, headers=headers)

    async def get(self, request: Request) -> Response:
        principal = self.auth().authenticate(request)
        return JSONResponse((await self._visible(request, principal)).to_dict())

    async def delete(self, request: Request) -> Response:
        principal = self.auth().authenticate(request)
        principal.require_operate("ending a silence")
        silence = await self._visible(request, principal)
        async with _available():
            if not await self.store.expire(silence.id):
                raise _not_found(silence.id)  # ended meanwhile
        return JSONResponse({**silence.to_dict(), "expired": True})

    async def _visible(self, request: Request, principal: Principal) -> Silence:
        silence_id = str(request.path_params["silence_id"])
        async with _available():
            silence = await self.store.get(silence_id, time.time())
        if silence is None or not principal.allows(silence.team):
            raise _not_found(silence_id)
        return silence


def _not_found(silence_id: str) -> HTTPException:
    return HTTPException(404, f"no silence in force with id {silence_id[:40]!r}")


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
    body = await json_object(request, limit=_MAX_BODY, example='{"matchers": [...]}')
    return body


def _duration(body: dict[str, Any], now: float, problems: list[str]) -> float | None:
    """Seconds from ``duration`` or ``ends_at`` (exactly one); a problem otherwise."""
    if ("duration" in body) == ("ends_at" in body):
        problems.append('give how long: duration (e.g. "2h") or ends_at (RFC 3339), one of them')
        return None
    if "duration" in body:
        try:
            return parse_duration(body["duration"])
        except ValueError as exc:
            problems.append(f"duration: {exc}")
            return None
    ends_at = body["ends_at"]
    try:
        moment = datetime.fromisoformat(str(ends_at).replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"ends_at {str(ends_at)[:40]!r} is not an RFC 3339 time")
        return None
    if moment.tzinfo is None:
        problems.append("ends_at needs a time zone, e.g. 2026-01-02T03:04:05Z")
        return None
    seconds = moment.timestamp() - now
    if not 1 <= seconds <= MAX_DURATION:
        problems.append(
            f"ends_at {str(ends_at)[:40]!r} must be in the next {MAX_DURATION // 86400:.0f} days"
        )
        return None
    return seconds


def silence_routes(auth: Callable[[], TokenAuth], store: SilenceStore) -> list[Route]:
    """The routes, for ``create_app`` to mount; ``auth`` gives the current tokens."""
    api = _Silences(auth, store)
    return [
        Route("/v1/silences", api.list, methods=["GET"]),
        Route("/v1/silences", api.create, methods=["POST"]),
        Route("/v1/silences/{silence_id}", api.get, methods=["GET"]),
        Route("/v1/silences/{silence_id}", api.delete, methods=["DELETE"]),
    ]
