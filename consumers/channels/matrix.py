"""``matrix``: send ``m.room.message`` events to explicit rooms.

``matrix://:ACCESS_TOKEN@host/?rooms=!id:server`` uses a token;
``matrix://user:password@host/?rooms=...`` logs in once (password login) and
keeps the token in memory. Room aliases (``%23alias:server``) are resolved
through the room directory and cached. A URL without rooms is an error: we
never broadcast to "all joined rooms" the way shoutrrr does.

The transaction id is derived from the delivery id, so a retry of the same
delivery with the same token is deduplicated by the homeserver.
"""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any
from urllib.parse import quote

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import headline, plain_text
from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, channel_url, timeout_of
from .base import ChannelDeps, Message, OutcomeClass, SendResult
from .pacing import Pacer, refusal
from .urls import split_list

__all__ = ["MatrixChannel", "create"]

API = "/_matrix/client/v3"
_URL_KEYS = ("rooms", "title", "disabletls")
_ROOM_RE = re.compile(r"^[!#][^:\s]+:[^\s]+$")
_TXN_SAFE = re.compile(r"[^A-Za-z0-9._~-]")


class MatrixChannel(HttpChannel):
    type = "matrix"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        base: str,
        rooms: list[str],
        access_token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        title_prefix: str = "",
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [access_token or "", password or ""])
        self.base = base
        self.rooms = rooms
        self._static_token = access_token
        self._token = access_token
        self._user = user
        self._password = password
        self._title_prefix = title_prefix
        self._room_ids: dict[str, str] = {}
        self._login_lock = asyncio.Lock()

    def describe(self) -> str:
        how = f"login as {self._user}" if self._user else "access token"
        return f"matrix {self.base} -> {', '.join(self.rooms)} ({how})"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token or '<token from login>'}"}

    def login_request(self) -> PlannedRequest:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": self._user},
            "password": self._password,
            "initial_device_display_name": "eventbus",
        }
        return PlannedRequest(
            "POST",
            f"{self.base}{API}/login",
            json=body,
            headers={"Content-Type": "application/json"},
            secrets=self._secrets,
            note="password login, once",
        )

    def resolve_request(self, alias: str) -> PlannedRequest:
        return PlannedRequest(
            "GET",
            f"{self.base}{API}/directory/room/{quote(alias, safe='')}",
            headers=self._auth(),
            secrets=self._secrets,
            note="alias lookup, cached",
        )

    def send_request(self, room: str, index: int, message: Message) -> PlannedRequest:
        title = headline(message, self._title_prefix)
        text = plain_text(message).replace(message.title, title, 1)
        body_html = html.escape(text[len(title) :].lstrip("\n")).replace("\n", "<br>")
        content: dict[str, Any] = {
            "msgtype": "m.text",
            "body": text,
            "format": "org.matrix.custom.html",
            "formatted_body": f"<strong>{html.escape(title)}</strong><br>{body_html}",
        }
        txn = _TXN_SAFE.sub("_", f"eventbus.{message.delivery_id}.{index}")
        url = f"{self.base}{API}/rooms/{quote(room, safe='')}/send/m.room.message/{txn}"
        headers = {**self._auth(), "Content-Type": "application/json"}
        return PlannedRequest("PUT", url, headers=headers, json=content, secrets=self._secrets)

    def plan(self, message: Message) -> list[PlannedRequest]:
        requests = []
        if self._token is None:
            requests.append(self.login_request())
        for room in self.rooms:
            if room.startswith("#") and room not in self._room_ids:
                requests.append(self.resolve_request(room))
        for index, room in enumerate(self.rooms):
            requests.append(self.send_request(self._room_ids.get(room, room), index, message))
        return requests

    async def send_paced(self, message: Message, pacer: Pacer) -> SendResult:
        wait = await pacer.acquire("", may_refuse=True)
        if wait is not None:
            return refusal(self.name, wait)
        failed = await self._ensure_token()
        if failed is not None:
            return failed
        latency = 0.0
        for index, room in enumerate(self.rooms):
            room_id = self._room_ids.get(room, room)
            if room.startswith("#") and room not in self._room_ids:
                answer = await self._json(self.resolve_request(room))
                if isinstance(answer, SendResult):
                    return answer
                found = answer.get("room_id")
                if not isinstance(found, str):
                    return SendResult(
                        OutcomeClass.PERMANENT,
                        error=f"matrix room alias {room} did not resolve to a room",
                    )
                room_id = self._room_ids[room] = found
            if index:
                await pacer.acquire("", may_refuse=False)
            result = await self.perform(self.send_request(room_id, index, message))
            latency += result.latency
            if not result.ok:
                if result.retry_after is not None:
                    pacer.penalize("", result.retry_after)
                return result
        return SendResult(OutcomeClass.DELIVERED, status=200, latency=latency)

    async def _ensure_token(self) -> SendResult | None:
        if self._token is not None:
            return None
        async with self._login_lock:
            if self._token is not None:
                return None
            answer = await self._json(self.login_request())
            if isinstance(answer, SendResult):
                return answer
            token = answer.get("access_token")
            if not isinstance(token, str) or not token:
                return SendResult(
                    OutcomeClass.PERMANENT, error="matrix login answered without an access_token"
                )
            self.add_secret(token)
            self._token = token
        return None

    async def _json(self, request: PlannedRequest) -> dict[str, Any] | SendResult:
        answer = await self.call(request)
        if isinstance(answer, SendResult):
            return answer
        response, body, latency = answer
        result = self.masked(self.classify(request, response, latency, body))
        if not result.ok:
            return result
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return SendResult(
                OutcomeClass.PERMANENT,
                status=response.status_code,
                error="matrix server answered with something that is not JSON",
            )
        return data

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        result = provider_result(response, latency)
        if result.ok:
            return result
        try:
            data = response.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        code, text = data.get("errcode", ""), str(data.get("error", ""))[:200]
        outcome, retry_after = result.outcome, result.retry_after
        if code == "M_LIMIT_EXCEEDED" and isinstance(data.get("retry_after_ms"), int):
            outcome, retry_after = OutcomeClass.RATE_LIMITED, data["retry_after_ms"] / 1000
        hint = ""
        if code == "M_UNKNOWN_TOKEN":
            if self._static_token is None:
                self._token = None  # log in again on the next attempt
                outcome = OutcomeClass.RETRYABLE
            else:
                hint = ": the access token is invalid or was logged out"
        elif code == "M_FORBIDDEN":
            hint = ": make sure the bot user has joined the room"
        elif code == "M_NOT_FOUND" and "/directory/" in str(request.url):
            hint = ": the room alias does not exist"
        detail = f"{code} {text}".strip() or "no details"
        return SendResult(
            outcome,
            status=response.status_code,
            latency=latency,
            retry_after=retry_after,
            response_excerpt=result.response_excerpt,
            error=f"matrix error HTTP {response.status_code}: {detail}{hint}",
        )


def _room(room: str, host: str) -> str:
    if not room.startswith(("!", "#")):
        room = f"#{room}"
    return room if ":" in room else f"{room}:{host}"


def create(spec: ChannelSpec, deps: ChannelDeps) -> MatrixChannel:
    opts = Options(spec, "matrix")
    opts.done()
    url = channel_url(spec, "matrix")
    assert url is not None
    url.check_keys(_URL_KEYS)
    if not url.host:
        raise ChannelConfigError("matrix URL has no homeserver host: matrix://:TOKEN@host/?rooms=")
    # shoutrrr prepends '#' to a bare alias; the homeserver is the URL's host
    # unless the alias names one (Apprise does the same)
    rooms = [_room(room, url.host) for room in split_list(url.get("rooms"))]
    if not rooms:
        raise ChannelConfigError(
            "matrix URL names no room: add ?rooms=!roomid:server (or %23alias:server); "
            "eventbus never sends to all joined rooms"
        )
    for room in rooms:
        if not _ROOM_RE.match(room):
            raise ChannelConfigError(
                f"matrix room {room!r} is not a room id (!id:server) or alias (#alias:server, "
                "written %23alias:server in the URL)"
            )
    if not url.password:
        raise ChannelConfigError(
            "matrix URL has no credentials: matrix://:ACCESS_TOKEN@host/?rooms=... or "
            "matrix://user:password@host/?rooms=... (percent-encode special characters)"
        )
    scheme = "http" if url.flag("disabletls", False) else "https"
    token = url.password if not url.user else None
    return MatrixChannel(
        spec.name,
        deps.http,
        base=url.base(scheme),
        rooms=rooms,
        access_token=token,
        user=url.user or None,
        password=url.password if url.user else None,
        title_prefix=url.get("title") or "",
        timeout=timeout_of(spec, deps),
    )
