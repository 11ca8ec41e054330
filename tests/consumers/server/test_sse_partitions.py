"""SSE over broker.partitions=3: cursor ids, replay of every partition, per-partition seams."""

from __future__ import annotations

import asyncio
import json

import pytest

from eventbus.keys import partition_of

from .conftest import TOKEN_ADMIN, Running, SseReader, StartServer, event

pytestmark = pytest.mark.integration

PARTS = 3
TEAMS = ["team-a", "team-b", "team-f"]  # partitions 0, 1 and 2


async def start(start_server: StartServer, **http: object) -> Running:
    assert sorted(partition_of(team, PARTS) for team in TEAMS) == [0, 1, 2]
    return await start_server(sections={"broker": {"partitions": PARTS}}, **http)


async def envelopes(reader: SseReader, count: int) -> list[tuple[str, str | None]]:
    """(resource id, SSE id) of the next ``count`` data messages."""
    out = []
    while len(out) < count:
        msg = await reader.message()
        assert msg.event == "message", msg
        out.append((json.loads(msg.data)["resource"]["id"], msg.id))
    return out


async def test_ids_are_cursors_and_a_resume_replays_every_partition_once(
    start_server: StartServer,
) -> None:
    app = await start(start_server, replay_limit=1000)
    reader = await app.stream(TOKEN_ADMIN)
    first = [event(team, resource=f"first-{n}-{team}") for n in range(3) for team in TEAMS]
    for ev in first:
        await app.publisher.publish(ev)
    got = await envelopes(reader, len(first))
    assert sorted(rid for rid, _ in got) == sorted(ev.resource.id for ev in first)
    cursor = got[-1][1]
    assert cursor is not None and len(cursor.split(",")) == PARTS
    # Disconnected (a new stream): what was published meanwhile is replayed.
    later = [event(team, resource=f"later-{n}-{team}") for n in range(4) for team in TEAMS]
    for ev in later:
        await app.publisher.publish(ev)
    resumed = await app.stream(TOKEN_ADMIN, last_event_id=cursor)
    replayed = await envelopes(resumed, len(later))
    assert sorted(rid for rid, _ in replayed) == sorted(ev.resource.id for ev in later)
    live = event("team-f", resource="live-after")
    await app.publisher.publish(live)
    [(rid, _id)] = await envelopes(resumed, 1)
    assert rid == "live-after", "nothing replayed twice, live goes on"
    # a cursor taken mid-replay resumes from there, too
    middle = replayed[5][1]
    assert middle is not None
    again = await app.stream(TOKEN_ADMIN, last_event_id=middle)
    rest = await envelopes(again, len(later) - 6 + 1)
    assert sorted(rid for rid, _ in rest) == sorted(
        [rid for rid, _ in replayed[6:]] + ["live-after"]
    )


@pytest.mark.parametrize(
    ("last_id", "says"),
    [
        pytest.param("1700000000000-0", "names 1 partition", id="unpartitioned-id"),
        pytest.param("1-0,2-0", "names 2 partition", id="other-count"),
        pytest.param("1-0,x,3-0", "not a stream id", id="malformed"),
    ],
)
async def test_a_foreign_or_malformed_last_event_id_is_refused_clearly(
    start_server: StartServer, last_id: str, says: str
) -> None:
    app = await start(start_server)
    response = await app.client.get(
        "/v1/events/stream", params={"token": TOKEN_ADMIN, "last_event_id": last_id}
    )
    assert response.status_code == 400
    assert says in response.json()["error"]


async def test_publishes_during_the_replay_arrive_once_per_partition(
    start_server: StartServer,
) -> None:
    app = await start(start_server, replay_limit=5000, client_buffer=5000)
    reader = await app.stream(TOKEN_ADMIN)
    await app.publisher.publish(event("team-a", resource="mark"))
    [(_, cursor)] = await envelopes(reader, 1)
    assert cursor is not None
    before = [event(TEAMS[n % 3], resource=f"before-{n}") for n in range(300)]
    await app.publisher.publish_many(before)

    async def publish_during() -> list[str]:
        during = [event(TEAMS[n % 3], resource=f"during-{n}") for n in range(150)]
        for ev in during:
            await app.publisher.publish(ev)
        return [ev.resource.id for ev in during]

    task = asyncio.create_task(publish_during())
    resumed = await app.stream(TOKEN_ADMIN, last_event_id=cursor)
    during = await task
    got = await envelopes(resumed, len(before) + len(during))
    ids = [rid for rid, _ in got]
    assert sorted(ids) == sorted([ev.resource.id for ev in before] + during)
    # one team's events stay in order
    for team in TEAMS:
        mine = [rid for rid in ids if rid.startswith("during-") and TEAMS[int(rid[7:]) % 3] == team]
        assert mine == sorted(mine, key=lambda rid: int(rid[7:]))
