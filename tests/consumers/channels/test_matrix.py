"""Matrix: explicit rooms only, token or password login, alias lookup, errors."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.base import OutcomeClass
from consumers.channels.matrix import MatrixChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client


@pytest.mark.parametrize(
    ("url", "rooms"),
    [
        pytest.param(
            "matrix://:syt_token123@matrix.example.org/?rooms=!abc:example.org",
            ["!abc:example.org"],
            id="token",
        ),
        pytest.param(
            "matrix://bot:pa%23ss@matrix.example.org:8448/?rooms=!a:x,%23ops:x",
            ["!a:x", "#ops:x"],
            id="login-and-alias",
        ),
    ],
)
def test_url_good(url: str, rooms: list[str]) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, MatrixChannel) and channel.rooms == rooms


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("matrix://:tok@host/", "names no room", id="no-rooms"),
        pytest.param("matrix://host/?rooms=!a:x", "no credentials", id="no-credentials"),
        pytest.param("matrix://:tok@host/?rooms=gen%20eral", "not a room id", id="bad-room"),
        pytest.param("matrix://:tok@host/?rooms=#a:x", "rooms=%23alias", id="raw-hash"),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_token_send_exact_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"event_id": "$e"}))
    async with mock_client(recorder) as client:
        channel = build(client, "matrix://:syt_token123@m.example/?rooms=!abc:m.example")
        result = await channel.send(make_message(title="T <1>", body="line1\nline2"))
    assert result.ok
    request = recorder.last
    assert request.method == "PUT"
    assert str(request.url) == (
        "https://m.example/_matrix/client/v3/rooms/%21abc%3Am.example/send/m.room.message/"
        "eventbus.dlv_1.0"
    )
    assert request.headers["authorization"] == "Bearer syt_token123"
    assert recorder.json() == {
        "msgtype": "m.text",
        "body": "T <1>\nline1\nline2",
        "format": "org.matrix.custom.html",
        "formatted_body": "<strong>T &lt;1&gt;</strong><br>line1<br>line2",
    }


async def test_password_login_alias_lookup_once() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            return httpx.Response(200, json={"access_token": "syt_fromlogin", "user_id": "@bot:x"})
        if "/directory/room/" in request.url.path:
            return httpx.Response(200, json={"room_id": "!resolved:x"})
        return httpx.Response(200, json={"event_id": "$e"})

    recorder = Recorder(answer)
    async with mock_client(recorder) as client:
        channel = build(client, "matrix://bot:s3cretpw@x/?rooms=%23ops:x")
        assert (await channel.send(make_message())).ok
        assert (await channel.send(make_message(delivery_id="dlv_2"))).ok
    paths = [r.url.path for r in recorder.requests]
    assert paths[0] == "/_matrix/client/v3/login"
    assert recorder.json(0)["password"] == "s3cretpw"
    assert paths[1] == "/_matrix/client/v3/directory/room/#ops:x"
    assert paths[2].startswith("/_matrix/client/v3/rooms/!resolved:x/send/")
    assert len(paths) == 4  # login and lookup happen once
    assert recorder.requests[3].headers["authorization"] == "Bearer syt_fromlogin"


async def test_errors() -> None:
    limited = httpx.Response(429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 1500})
    async with mock_client(Recorder(lambda request: limited)) as client:
        result = await build(client, "matrix://:tok123@x/?rooms=!a:x").send(make_message())
    assert result.outcome is OutcomeClass.RATE_LIMITED and result.retry_after == 1.5

    forbidden = httpx.Response(403, json={"errcode": "M_FORBIDDEN", "error": "not in room"})
    async with mock_client(Recorder(lambda request: forbidden)) as client:
        result = await build(client, "matrix://:tok123@x/?rooms=!a:x").send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT and "joined the room" in (result.error or "")

    bad_login = httpx.Response(403, json={"errcode": "M_FORBIDDEN", "error": "Invalid password"})
    async with mock_client(Recorder(lambda request: bad_login)) as client:
        result = await build(client, "matrix://bot:wrongpw1@x/?rooms=!a:x").send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT and "wrongpw1" not in (result.error or "")
