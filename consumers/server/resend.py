"""``POST /v1/deliveries/{id}/resend``: one more attempt of a delivery (``consumers.resend``).

Needs a token with ``role: operate`` (403 otherwise). A delivery of a team
outside the token is 404, exactly as one that does not exist. Answers:

- 202 ``{"delivery_id", "scheduled": true, "note"}``: a retry due now; a
  worker sends it with the same ``webhook-id`` and records the attempt.
- 409 ``{"error"}``: not resent, and why (delivered without ``?force=true``,
  a routing decision, its event no longer available).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consumers.resend import Resend
from eventbus.errors import BrokerUnavailable

from .auth import TokenAuth

__all__ = ["resend_routes"]

_TRUE: Final = frozenset({"1", "true", "yes"})
_MAX_ID: Final = 200


class _Resends:
    def __init__(self, auth: Callable[[], TokenAuth], resend: Resend) -> None:
        self.auth = auth  # read per request: a reload swaps the tokens
        self.resend = resend

    async def post(self, request: Request) -> Response:
        principal = self.auth().authenticate(request)
        principal.require_operate("resending a delivery")
        record_id = request.path_params["id"]
        if len(record_id) > _MAX_ID:
            raise HTTPException(404, "delivery not found")
        force = request.query_params.get("force", "").lower() in _TRUE
        try:
            done = await self.resend.resend(
                record_id, force=force, teams=principal.teams, by=f"token {principal.name!r}"
            )
        except BrokerUnavailable:
            raise HTTPException(503, "Redis is unreachable; retry shortly") from None
        if not done.found:
            raise HTTPException(404, "delivery not found")
        if not done.scheduled:
            raise HTTPException(409, f"not resent: {done.note}")
        return JSONResponse(done.to_dict(), status_code=202)


def resend_routes(auth: Callable[[], TokenAuth], resend: Resend) -> list[Route]:
    """The route, to mount in ``create_app``; ``auth`` gives the current tokens."""
    return [Route("/v1/deliveries/{id}/resend", _Resends(auth, resend).post, methods=["POST"])]
