"""A channel's health and its on/off switch over HTTP, for the dashboard's Channels view.

==========================================  ===================================
``GET /v1/channels/{name}/health?hours=24``  delivered and failed attempts per
                                             minute (``hours`` 1 to 24), the
                                             circuit, the disabled state
``POST /v1/channels/{name}/disable``         stop delivering (``operate``);
                                             body ``{"reason": ...}`` optional
``POST /v1/channels/{name}/enable``          deliver again, circuit closed
                                             (``operate``)
==========================================  ===================================

Visibility is the console's (``GET /v1/channels/{name}``): a channel of a team
outside the token is 404 like a missing one; the YAML's channels are listed to
every token, and only an admin token switches them (403 otherwise), as for
``test``. The counters are ``BreakerStore.minutes`` (what counts as failed is
said there); errors shown pass through the channel's own redaction once more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import redis.asyncio as aioredis
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eventbus.keys import Keys
from eventbus.redaction import Redactor
from eventbus.settings import ChannelSpec

from ..breaker import breaker_rules
from ..channel_switch import DEFAULT_REASON, disable_channel, enable_channel
from ..channels.base import channel_redactor
from ..channels.registry import create_channel
from ..console import Console, ConsoleError
from ..store import BreakerStore, Circuit, DeliveryStore
from .auth import Principal, TokenAuth
from .bodies import json_object
from .console import console_endpoint

__all__ = ["channel_health_routes"]

log = structlog.get_logger("eventbus.console")

_MAX_HOURS: Final = 24
_MAX_REASON: Final = 200


class _Health:
    def __init__(
        self, auth: Callable[[], TokenAuth], console: Console, redis: aioredis.Redis
    ) -> None:
        self.auth = auth
        self.console = console
        self.redis = redis
        self.keys = Keys(console.settings.broker.prefix)

    async def _visible(
        self, request: Request, action: str | None
    ) -> tuple[Principal, str, str, str]:
        principal = self.auth().authenticate(request)
        if action is not None:
            principal.require_operate(action)
        name = request.path_params["name"]
        shown = await self.console.show("channel", name, principal.teams)  # 404 if hidden
        if action is not None and shown["source"] == "config" and principal.teams is not None:
            raise ConsoleError(
                403, f"channel {name!r} is the configuration's: only an admin token {action}"
            )
        return principal, name, str(shown["source"]), str(shown.get("team") or "")

    async def health(self, request: Request) -> Response:
        principal, name, source, _team = await self._visible(request, None)
        hours = _hours(request)
        now = time.time()
        settings = await self.console.merged(principal.teams)
        spec = settings.channel(name)
        if spec is None:  # removed between the two reads
            raise ConsoleError(404, f"no channel named {name[:64]!r}")
        rule = breaker_rules(settings)[name]
        breakers = BreakerStore(self.redis, self.keys)
        circuit = (await breakers.read({name: rule.window}, now)).get(name) or Circuit()
        state = (await DeliveryStore(self.redis, self.keys).channel_states()).get(name)
        since = (int(now // 60) - hours * 60 + 1) * 60  # the current minute is the last
        minutes = await breakers.minutes(name, since)
        redactor = self._redactor(spec)
        return JSONResponse(
            {
                "channel": name,
                "source": source,
                "type": spec.kind,
                "enabled_in_config": spec.enabled,
                "disabled": bool(state and state.disabled),
                "disabled_reason": _shown(redactor, state.reason) if state else None,
                "disabled_at": state.at if state and state.disabled else None,
                "circuit": {
                    "state": circuit.state.value,
                    "breaker_enabled": rule.enabled,
                    "failure_ratio": circuit.failure_ratio,
                    "attempts": circuit.attempts,
                    "failures": circuit.failures,
                    "consecutive_failures": circuit.consecutive,
                    "until": circuit.until or None,
                    "last_error": _shown(redactor, circuit.last_error),
                },
                "hours": hours,
                "since": since,
                "minutes": [
                    {"at": m.at, "delivered": m.delivered, "failed": m.failed} for m in minutes
                ],
            }
        )

    def _redactor(self, spec: ChannelSpec) -> Redactor:
        try:
            return channel_redactor(create_channel(spec, self.console.deps))
        except Exception:  # a channel that no longer builds: its errors were redacted already
            return Redactor()

    async def disable(self, request: Request) -> Response:
        principal, name, _source, team = await self._visible(request, "disables it")
        reason = DEFAULT_REASON
        if await request.body():
            body = await json_object(request, limit=4096, example='{"reason": "maintenance"}')
            given = body.get("reason", reason)
            if not isinstance(given, str) or not given.strip():
                raise ConsoleError(422, '"reason" must be a non-empty string')
            reason = given.strip()[:_MAX_REASON]
        state = await disable_channel(
            self.redis, self.keys, name, reason, actor=principal.name, team=team
        )
        log.info("channel.disabled_by_operator", channel=name, token=principal.name)
        return JSONResponse({"channel": name, "disabled": True, "reason": state.reason})

    async def enable(self, request: Request) -> Response:
        principal, name, _source, team = await self._visible(request, "enables it")
        was = await enable_channel(self.redis, self.keys, name, actor=principal.name, team=team)
        log.info("channel.enabled_by_operator", channel=name, token=principal.name, was=was)
        return JSONResponse({"channel": name, "disabled": False, "was_disabled": was})


def _hours(request: Request) -> int:
    raw = request.query_params.get("hours") or str(_MAX_HOURS)
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= _MAX_HOURS:
        raise ConsoleError(400, f"hours must be an integer from 1 to {_MAX_HOURS}, not {raw[:8]!r}")
    return int(raw)


def _shown(redactor: Redactor, text: str | None) -> str | None:
    return redactor.mask(text) if text else None


def channel_health_routes(
    auth: Callable[[], TokenAuth], console: Console, redis: aioredis.Redis
) -> list[Route]:
    """The routes, for ``create_app`` to mount next to the console's."""
    api = _Health(auth, console, redis)
    path = "/v1/channels/{name}/"
    return [
        Route(path + "health", console_endpoint("channel", api.health), methods=["GET"]),
        Route(path + "disable", console_endpoint("channel", api.disable), methods=["POST"]),
        Route(path + "enable", console_endpoint("channel", api.enable), methods=["POST"]),
    ]
