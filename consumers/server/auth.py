"""Bearer tokens and team scoping for the HTTP API.

Tokens come from ``http.tokens``; each names the teams it may read (``["*"]``
for every team). A request presents one as ``Authorization: Bearer <token>``
or, for the browser's ``EventSource`` (which cannot set headers), as the
``token`` query parameter. The header wins when both are present.

Presented tokens are compared by SHA-256 digest with ``hmac.compare_digest``
against every configured token, so neither timing nor the error body says
anything about the secret. Only the token's ``name`` is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request

from eventbus.settings import ApiToken

__all__ = ["Principal", "TokenAuth", "split_param"]

ALL_TEAMS = "*"
MAX_LIST_ITEMS = 32


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token belongs to. ``teams`` is ``None`` for an admin token."""

    name: str
    teams: frozenset[str] | None
    role: str = "read"  # "read" or "operate" (ApiToken.role)

    def allows(self, team: str) -> bool:
        return self.teams is None or team in self.teams

    @property
    def may_operate(self) -> bool:
        """Whether the token may change things (ack, resolve, edit), not only read."""
        return self.role == "operate"

    def require_operate(self, action: str) -> None:
        """A 403 ``HTTPException`` unless the token has ``role: operate``."""
        if not self.may_operate:
            raise _reject(
                403, f"token {self.name!r} has role 'read': {action} needs role 'operate'"
            )

    def scope(self, requested: Sequence[str]) -> frozenset[str] | None:
        """The teams a request may see: ``requested`` (each must be allowed)
        or, when nothing is requested, every team of the token.

        Raises a 403 ``HTTPException`` naming the first team outside the token.
        """
        if not requested:
            return self.teams
        for team in requested:
            if not self.allows(team):
                raise _reject(403, f"token {self.name!r} may not read team {team!r}")
        return frozenset(requested)


class TokenAuth:
    def __init__(self, tokens: Iterable[ApiToken]) -> None:
        self._tokens: list[tuple[bytes, Principal]] = []
        for token in tokens:
            teams = None if ALL_TEAMS in token.teams else frozenset(token.teams)
            digest = _digest(token.token.get_secret_value())
            self._tokens.append((digest, Principal(token.name, teams, token.role)))

    def __repr__(self) -> str:
        return f"TokenAuth({len(self._tokens)} tokens)"

    @property
    def configured(self) -> bool:
        """Whether any token exists (with none, every request is refused)."""
        return bool(self._tokens)

    def authenticate(self, request: Request) -> Principal:
        """The principal of the request's token; a 401 ``HTTPException`` otherwise."""
        presented = _presented_token(request)
        if not self._tokens:
            raise _reject(401, NO_TOKENS)
        if presented is None:
            raise _reject(
                401, "missing token: send 'Authorization: Bearer <token>' or ?token=<token>"
            )
        digest = _digest(presented)
        found: Principal | None = None
        for known, principal in self._tokens:
            # No early exit: every token is compared, whichever matches.
            if hmac.compare_digest(known, digest) and found is None:
                found = principal
        if found is None:
            raise _reject(401, "invalid token")
        return found


NO_TOKENS = (
    "no token configured on this server: make one with `eventbus tokens new --name NAME "
    "--teams TEAM`, add it under http.tokens and reload the worker"
)


def split_param(values: Iterable[str], what: str) -> list[str]:
    """Comma-separated (and repeated) query values, de-duplicated, in order."""
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if item and item not in out:
                out.append(item)
    if len(out) > MAX_LIST_ITEMS:
        raise _reject(400, f"too many values for {what!r} (at most {MAX_LIST_ITEMS})")
    return out


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _reject(401, "the Authorization header must be 'Bearer <token>'")
        return value.strip()
    return request.query_params.get("token") or None


def _reject(status: int, message: str) -> HTTPException:
    headers = {"WWW-Authenticate": 'Bearer realm="eventbus"'} if status == 401 else None
    return HTTPException(status, message, headers=headers)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
