"""The store's contract, run against the real Redis and the embedded broker alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from consumers.store import (
    Attempt,
    ChannelState,
    Committer,
    DeadLetterOrder,
    DeadLetters,
    DeliveryRecord,
    DeliveryStatus,
    DeliveryStore,
    RetryJob,
    RetryQueue,
    Settlement,
    fold_legacy_stream,
    migrate_layout,
)
from eventbus.brokers.embedded import EmbeddedRedis
from eventbus.brokers.redis_streams import StreamEntry, connect
from eventbus.keys import Keys, LegacyKeys

from .test_migration import old_layout

GROUP = "delivery"


@pytest.fixture(scope="module")
def embedded() -> Iterator[str]:
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.integration), "embedded"])
async def client(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[aioredis.Redis]:
    url = request.getfixturevalue("redis_url" if request.param == "redis" else "embedded")
    connection = connect(url)  # a redis+cluster:// URL gives the cluster client
    try:
        yield connection
    finally:
        found = [key async for key in connection.scan_iter(match="{" + prefix + "}*")]
        if found:
            await connection.delete(*found)
        await connection.aclose()


@pytest.fixture
def keys(prefix: str) -> Keys:
    return Keys(prefix)


def record(number: int, status: DeliveryStatus = DeliveryStatus.DELIVERED) -> DeliveryRecord:
    return DeliveryRecord(
        id=f"msg_{number}",
        event_id=f"ev_{number}",
        event_type="capsule.create",
        team_id="team-1",
        subscription="ops",
        channel="hook",
        channel_type="webhook",
        status=status,
        attempts=1,
        created_at=1_900_000_000.0 + number,
        updated_at=1_900_000_000.5 + number,
        history=[Attempt(1, 1_900_000_000.5 + number, 0.01, "delivered", 200)],
    )


async def pending_entry(client: aioredis.Redis, keys: Keys, payload: bytes = b"{}") -> str:
    await client.xgroup_create(keys.events, GROUP, id="0", mkstream=True)
    entry_id = (await client.xadd(keys.events, {"payload": payload})).decode()
    await client.xreadgroup(GROUP, "c1", {keys.events: ">"}, count=10)
    return entry_id


async def test_records_are_written_and_read(client: aioredis.Redis, keys: Keys) -> None:
    committer = Committer(client, keys, GROUP, 3600)
    failed = record(2, DeliveryStatus.FAILED)
    await committer.commit([Settlement(records=[record(1)]), Settlement(records=[failed])], 0)

    store = DeliveryStore(client, keys, 3600)
    assert await store.get("msg_1") == record(1)
    assert (await store.get("msg_2", history=False)) is not None
    assert [r.id for r in await store.query(limit=10)] == ["msg_2", "msg_1"]
    assert [r.id for r in await store.query(status="failed")] == ["msg_2"]
    assert [r.id for r in await store.query(event_id="ev_1")] == ["msg_1"]
    assert 0 < await client.ttl(keys.delivery("msg_1")) <= 3600


async def test_retries_are_scheduled_claimed_and_done(client: aioredis.Redis, keys: Keys) -> None:
    committer = Committer(client, keys, GROUP, 3600)
    history = (Attempt(1, 10.0, 0.5, "retryable", 503, "HTTP 503"),)
    job = RetryJob("msg_1", b'{"id": "x"}', "ops", "hook", 1, 5.0, history)
    later = RetryJob("msg_2", b"{}", "ops", "hook", 2, 6.0)
    await committer.commit([Settlement(retries=[(job, 100.0), (later, 500.0)])], 0)

    queue = RetryQueue(client, keys, 3600)
    assert await queue.due_count(200.0) == 1
    assert await queue.next_due() == 100.0
    assert await queue.claim(200.0, lease=60.0, count=10) == [job]
    assert await queue.claim(200.0, lease=60.0, count=10) == [], "leased"
    assert await queue.due_count(260.0) == 1, "the lease ran out"

    await committer.commit([Settlement(retries_done=["msg_1"])], 0)
    assert await queue.claim(1000.0, lease=60.0, count=10) == [later]
    assert await client.exists(keys.retry_job("msg_1")) == 0


async def test_dead_letters_are_kept_and_redriven(client: aioredis.Redis, keys: Keys) -> None:
    entry_id = await pending_entry(client, keys, b"\xff not json")
    entry = StreamEntry(entry_id, {b"payload": b"\xff not json"})
    order = DeadLetterOrder(entry, "invalid_envelope", "not JSON")
    await Committer(client, keys, GROUP, 3600).commit(
        [Settlement(ack=entry_id, dead_letter=order)], 42.0
    )

    letters = DeadLetters(client, keys)
    assert await letters.count() == 1
    (letter,) = await letters.entries()
    assert (letter.original_id, letter.reason, letter.error, letter.at) == (
        entry_id,
        "invalid_envelope",
        "not JSON",
        42.0,
    )
    assert letter.fields == {b"payload": b"\xff not json"}
    assert (await client.xpending(keys.events, GROUP))["pending"] == 0

    [(dlq_id, new_id)] = await letters.redrive()
    assert dlq_id == letter.id and await letters.count() == 0
    [(_, fields)] = await client.xrange(keys.events, new_id, new_id)
    assert fields == {b"payload": b"\xff not json"}


async def test_ack_goes_with_the_records(client: aioredis.Redis, keys: Keys) -> None:
    entry_id = await pending_entry(client, keys)
    other = await client.xadd(keys.events, {"payload": b"{}"})
    await client.xreadgroup(GROUP, "c1", {keys.events: ">"}, count=10)
    state = ChannelState(True, "HTTP 410", 7.0)
    settlement = Settlement(records=[record(1)], disable=[("hook", state)], ack=entry_id)

    await Committer(client, keys, GROUP, 3600).commit([settlement], 0)

    rows = await client.xpending_range(keys.events, GROUP, min="-", max="+", count=10)
    assert [row["message_id"] for row in rows] == [other], "only the settled entry is acked"
    store = DeliveryStore(client, keys, 3600)
    assert await store.get("msg_1") is not None
    assert await store.channel_states() == {"hook": state}


async def test_the_old_layout_is_migrated_and_an_old_publisher_folded_in(
    client: aioredis.Redis, keys: Keys, prefix: str
) -> None:
    ids = await old_layout(client, prefix)

    report = await migrate_layout(client, prefix)

    assert report.renamed == 8
    assert [i.decode() for i, _ in await client.xrange(keys.events)] == list(ids.values())
    assert (await client.xpending(keys.events, GROUP))["pending"] == 1
    assert (await migrate_layout(client, prefix)).already_done
    await client.xadd(LegacyKeys(prefix).events, {"payload": b"{}"})
    assert await fold_legacy_stream(client, prefix, GROUP) == 1
    assert await client.xlen(keys.events) == 4
