"""The live mirror over SSE: auth, team isolation, filters, replay, heartbeat, slow clients."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from consumers.server.live import OVERFLOW

from .conftest import TOKEN_A, TOKEN_ADMIN, TOKEN_B, Running, SseReader, StartServer, event

pytestmark = pytest.mark.integration


async def collect_until(reader: SseReader, marker_id: str) -> list[dict[str, object]]:
    """Data messages up to and including the envelope whose id is ``marker_id``."""
    out: list[dict[str, object]] = []
    while True:
        msg = await reader.message()
        assert msg.event == "message", msg
        envelope = json.loads(msg.data)
        envelope["_sse_id"] = msg.id
        out.append(envelope)
        if envelope["id"] == marker_id:
            return out


# -- auth ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "headers", "status"),
    [
        pytest.param({}, {}, 401, id="missing"),
        pytest.param({"token": "nope"}, {}, 401, id="bad-query-token"),
        pytest.param({}, {"Authorization": "Bearer nope"}, 401, id="bad-bearer"),
        pytest.param({}, {"Authorization": f"Basic {TOKEN_A}"}, 401, id="not-bearer"),
        pytest.param({"token": TOKEN_A, "team": "team-b"}, {}, 403, id="other-team"),
        pytest.param({"token": TOKEN_A, "team": "team-a,team-b"}, {}, 403, id="one-team-too-many"),
        pytest.param({"token": TOKEN_A, "outcome": "maybe"}, {}, 400, id="bad-outcome"),
        pytest.param({"token": TOKEN_A, "type": "Capsule/*"}, {}, 400, id="bad-type"),
        pytest.param({"token": TOKEN_A, "last_event_id": "yesterday"}, {}, 400, id="bad-last-id"),
    ],
)
async def test_refused_requests(
    start_server: StartServer, params: dict[str, str], headers: dict[str, str], status: int
) -> None:
    app = await start_server()
    response = await app.client.get("/v1/events/stream", params=params, headers=headers)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    for secret in ("secret-token", TOKEN_A):
        assert secret not in response.text
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert app.metrics.sse_clients._value.get() == 0


async def test_header_token_and_team_scope(start_server: StartServer) -> None:
    app = await start_server()
    async with app.client.stream(
        "GET",
        "/v1/events/stream",
        params={"team": "team-a"},
        headers={"Authorization": f"Bearer {TOKEN_A}"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        await reader.connected()
        marker = event("team-a")
        await app.publisher.publish(marker)
        [got] = await collect_until(reader, marker.id)
        assert got["team_id"] == "team-a"


# -- team isolation and filters ------------------------------------------------------


async def test_team_isolation_live(start_server: StartServer) -> None:
    app = await start_server()
    a = await app.stream(TOKEN_A)
    b = await app.stream(TOKEN_B)
    admin = await app.stream(TOKEN_ADMIN)

    sent = [
        event("team-b", resource="b1"),
        event("team-a", resource="a1"),
        event("team-b", "capsule.state.changed", outcome=None, resource="b2"),
        event("team-a", "capsule.state.changed", outcome=None, resource="a2"),
    ]
    for ev in sent:
        if ev.event == "capsule.state.changed":
            await app.publisher.publish_transient(ev)
        else:
            await app.publisher.publish(ev)
    # Markers, one per team, published last: everything before arrived first.
    marker_a, marker_b = event("team-a", resource="end"), event("team-b", resource="end")
    await app.publisher.publish(marker_b)
    await app.publisher.publish(marker_a)

    got_a = await collect_until(a, marker_a.id)
    got_b = await collect_until(b, marker_b.id)
    got_admin = await collect_until(admin, marker_a.id)

    assert [e["resource"]["id"] for e in got_a] == ["a1", "a2", "end"]  # type: ignore[index]
    assert [e["resource"]["id"] for e in got_b] == ["b1", "b2", "end"]  # type: ignore[index]
    assert len(got_admin) == 6
    assert {e["team_id"] for e in got_a} == {"team-a"}
    # Durable events carry their stream id; transient ones none.
    assert got_a[0]["_sse_id"] is not None
    assert got_a[1]["_sse_id"] is None


async def test_team_isolation_on_replay(start_server: StartServer) -> None:
    app = await start_server()
    ids = []
    for i in range(6):
        ids.append(
            await app.publisher.publish(event("team-a" if i % 2 else "team-b", resource=f"r{i}"))
        )
    reader = await app.stream(TOKEN_A, last_event_id="0-0")
    marker = event("team-a", resource="end")
    await app.publisher.publish(event("team-b", resource="live-b"))
    await app.publisher.publish(marker)
    got = await collect_until(reader, marker.id)
    assert [e["resource"]["id"] for e in got] == ["r1", "r3", "r5", "end"]  # type: ignore[index]
    assert [e["_sse_id"] for e in got[:3]] == [ids[1], ids[3], ids[5]]


async def test_filters_type_glob_and_outcome(start_server: StartServer) -> None:
    app = await start_server()
    reader = await app.stream(TOKEN_ADMIN, type="capsule.*,host.down", outcome="error")
    marker = event("team-b", "host.down", outcome="error", resource="end", error="gone")
    for ev in [
        event("team-a", "capsule.create", "success", "no-outcome"),
        event("team-a", "capsule.create", "error", "yes-1", error="boom"),
        event("team-b", "host.up", "error", "no-type"),
        event("team-b", "template.snapshot.create", "error", "no-type-2"),
        event("team-a", "capsule.pause", "error", "yes-2"),
        marker,
    ]:
        await app.publisher.publish(ev)
    got = await collect_until(reader, marker.id)
    assert [e["resource"]["id"] for e in got] == ["yes-1", "yes-2", "end"]  # type: ignore[index]


async def test_outcome_none_filter(start_server: StartServer) -> None:
    app = await start_server()
    reader = await app.stream(TOKEN_A, outcome="none")
    marker = event("team-a", "host.up", outcome=None, resource="end")
    await app.publisher.publish(event("team-a", outcome="success"))
    await app.publisher.publish(marker)
    got = await collect_until(reader, marker.id)
    assert [e["resource"]["id"] for e in got] == ["end"]  # type: ignore[index]


# -- replay -------------------------------------------------------------------------


async def test_last_event_id_replay_seam(start_server: StartServer) -> None:
    """Durable events published before and during the connection arrive once, in order."""
    app = await start_server(client_buffer=5000, replay_limit=5000)
    before = [await app.publisher.publish(event(resource=f"before-{i}")) for i in range(450)]
    resume_after = before[49]  # the client saw the first 50

    async def publish_during() -> list[str]:
        ids = []
        for i in range(300):
            ev = event(resource=f"during-{i}")
            if i % 10 == 0:
                # transient events interleaved: delivered live, never replayed
                await app.publisher.publish_transient(
                    event(type_="capsule.state.changed", outcome=None, resource=f"t-{i}")
                )
            ids.append(await app.publisher.publish(ev))
        return ids

    async with app.client.stream(
        "GET",
        "/v1/events/stream",
        params={"token": TOKEN_A},
        headers={"Last-Event-ID": resume_after},
    ) as response:
        assert response.status_code == 200
        reader = SseReader(response)
        # Start publishing before the first message is read: the replay (two
        # pages and more) and the live messages overlap.
        during_task = asyncio.create_task(publish_during())
        await reader.connected()
        during = await during_task
        expected = before[50:] + during
        seen: list[str] = []
        transient = 0
        while len(seen) < len(expected):
            msg = await reader.message()
            assert msg.event == "message"
            if msg.id is None:
                transient += 1
            else:
                seen.append(msg.id)
        assert seen == expected  # no gap, no duplicate, in stream order
        assert transient <= 30


async def test_replay_query_parameter_and_header_precedence(start_server: StartServer) -> None:
    app = await start_server()
    ids = [await app.publisher.publish(event(resource=f"r{i}")) for i in range(4)]
    async with app.client.stream(
        "GET",
        "/v1/events/stream",
        params={"token": TOKEN_A, "last_event_id": ids[0]},
        headers={"Last-Event-ID": ids[2]},
    ) as response:
        reader = SseReader(response)
        await reader.connected()
        msg = await reader.message()
        assert msg.id == ids[3]  # the header (sent by EventSource on reconnect) wins
    reader = await app.stream(TOKEN_A, last_event_id=ids[1])
    assert [(await reader.message()).id for _ in range(2)] == ids[2:]


async def test_replay_is_bounded_and_says_so(start_server: StartServer) -> None:
    app = await start_server(replay_limit=3)
    ids = [await app.publisher.publish(event(resource=f"r{i}")) for i in range(10)]
    reader = await app.stream(TOKEN_A, last_event_id=ids[0])
    got = [await reader.message() for _ in range(4)]
    assert [m.id for m in got[:3]] == ids[1:4]
    assert got[3].event == "replay-truncated"
    assert json.loads(got[3].data) == {"last_id": ids[3], "sent": 3}
    marker = event(resource="live")
    marker_id = await app.publisher.publish(marker)
    assert (await reader.message()).id == marker_id


async def test_last_event_id_ahead_of_the_stream_skips_nothing(start_server: StartServer) -> None:
    """After the stream was reset, an old client's id must not hide new events."""
    app = await start_server()
    old_id = await app.publisher.publish(event(resource="old"))
    reader = await app.stream(TOKEN_A, last_event_id="99999999999999-0")
    marker_id = await app.publisher.publish(event(resource="new"))
    first = await reader.message()
    if first.id == old_id:
        # The live hub may still be handing the old event out as the client
        # joins (at least once); what matters is that the new one follows.
        first = await reader.message()
    assert first.id == marker_id


async def test_transient_events_are_not_replayed(start_server: StartServer) -> None:
    app = await start_server()
    first = await app.publisher.publish(event(resource="d0"))
    await app.publisher.publish_transient(
        event(type_="capsule.state.changed", outcome=None, resource="t")
    )
    second = await app.publisher.publish(event(resource="d1"))
    reader = await app.stream(TOKEN_A, last_event_id=first)
    msg = await reader.message()
    assert msg.id == second


# -- heartbeat and slow clients -------------------------------------------------------------


async def test_heartbeat_comments(start_server: StartServer) -> None:
    app = await start_server(heartbeat=0.1)
    reader = await app.stream(TOKEN_A)
    for _ in range(2):
        msg = await reader.next(timeout=2.0)
        assert msg.comments == ["heartbeat"]
        assert msg.data == ""


async def test_slow_client_is_dropped_with_bounded_buffer(start_server: StartServer) -> None:
    app = await start_server(client_buffer=5)
    reader = await app.stream(TOKEN_A)  # ...and then never reads again
    [sub] = app.server.hub.subscribers
    fast = await app.stream(TOKEN_ADMIN, team="team-b")  # not matching: unaffected
    padding = {f"k{i}": "x" * 1000 for i in range(8)}  # ~8 KB per event

    async def flood() -> None:
        # Stopped by the subscriber's end, not by cancel(): redis-py 8.1 with
        # hiredis may swallow a cancel that lands while a reply is parsed.
        while sub.end_reason is None:
            await app.publisher.publish_transient(
                event(type_="capsule.state.changed", outcome=None, metadata=padding)
            )

    async with asyncio.timeout(30):
        await asyncio.gather(flood(), sub.wait_ended())

    assert sub.end_reason == OVERFLOW
    assert sub.high_water <= 5  # the buffer never grew past its bound
    assert app.metrics.sse_dropped._value.get() == 1
    assert sub not in app.server.hub.subscribers
    assert app.metrics.sse_clients._value.get() == 1  # only the other client is left

    # The dropped connection is closed by the server (its unread bytes aside).
    with pytest.raises((EOFError, httpx.RemoteProtocolError)):
        while True:
            await reader.next(timeout=15)

    marker = event("team-b", resource="still-live")
    await app.publisher.publish(marker)
    got = await collect_until(fast, marker.id)
    assert got[-1]["resource"] == {"id": "still-live", "type": "capsule"}


async def test_stop_ends_streams(start_server: StartServer) -> None:
    app: Running = await start_server()
    reader = await app.stream(TOKEN_A)
    await app.server.stop()
    with pytest.raises(EOFError):
        await reader.next(timeout=10)
    assert app.metrics.sse_clients._value.get() == 0


async def test_revoked_token_is_refused_after_set_tokens(start_server: StartServer) -> None:
    app = await start_server()
    reader = await app.stream(TOKEN_A)
    kept = [t for t in app.settings.http.tokens if t.name != "team-a"]
    app.server.set_tokens(kept)
    with pytest.raises(EOFError):  # streams end so that clients authenticate again
        await reader.next(timeout=10)
    response = await app.client.get("/v1/events/stream", params={"token": TOKEN_A})
    assert response.status_code == 401
    await app.stream(TOKEN_B)  # the others still work
