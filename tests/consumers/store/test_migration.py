"""The move from the untagged key layout to the hash-tagged one, on the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from consumers.store import fold_legacy_stream, migrate_layout
from consumers.worker import Worker
from eventbus.keys import Keys, LegacyKeys
from eventbus.settings import Settings

from ..fakes import FakeChannel, channel_spec, event, subscription

pytestmark = pytest.mark.integration

GROUP = "delivery"


async def old_layout(redis: aioredis.Redis, prefix: str) -> dict[str, str]:
    """A deployment as the previous version left it: one entry acked, one pending, one new."""
    old = LegacyKeys(prefix)
    ids = [
        (await redis.xadd(old.events, {"payload": event().to_json()})).decode() for _ in range(3)
    ]
    await redis.xgroup_create(old.events, GROUP, id="0")
    await redis.xreadgroup(GROUP, "old-worker", {old.events: ">"}, count=2)
    await redis.xack(old.events, GROUP, ids[0])
    await redis.xadd(old.dlq, {"payload": b"\xff not json", "dlq_reason": "invalid_envelope"})
    await redis.zadd(old.deliveries_index, {"msg_1": 100.0})
    await redis.zadd(old.retries, {"msg_1": 4e9})
    await redis.hset(old.channel_state, "gone", '{"disabled": true}')
    await redis.set(f"{prefix}:delivery:msg_1", b'{"id": "msg_1"}', ex=3600)
    await redis.hset(f"{prefix}:retry:msg_1", mapping={"payload": b"{}", "attempts": 1})
    await redis.sadd(f"{prefix}:event:ev1:deliveries", "msg_1")
    return {"acked": ids[0], "pending": ids[1], "unread": ids[2]}


async def test_every_old_key_moves_and_the_group_keeps_its_pending_entries(
    redis: aioredis.Redis, prefix: str
) -> None:
    ids = await old_layout(redis, prefix)
    keys = Keys(prefix)

    report = await migrate_layout(redis, prefix)

    assert report.renamed == 8 and report.merged == 0
    assert [k async for k in redis.scan_iter(match=f"{prefix}:*")] == []
    assert [i.decode() for i, _ in await redis.xrange(keys.events)] == list(ids.values())
    pending = await redis.xpending_range(keys.events, GROUP, min="-", max="+", count=10)
    assert [row["message_id"].decode() for row in pending] == [ids["pending"]]
    assert pending[0]["consumer"] == b"old-worker"
    assert await redis.xlen(keys.dlq) == 1
    assert await redis.zscore(keys.deliveries_index, "msg_1") == 100.0
    assert await redis.zscore(keys.retries, "msg_1") == 4e9
    assert await redis.hget(keys.channel_state, "gone") == b'{"disabled": true}'
    assert await redis.get(keys.delivery("msg_1")) == b'{"id": "msg_1"}'
    assert 0 < await redis.ttl(keys.delivery("msg_1")) <= 3600, "RENAME keeps the expiry"
    assert await redis.hget(keys.retry_job("msg_1"), "attempts") == b"1"
    assert await redis.smembers(keys.event_deliveries("ev1")) == {b"msg_1"}


async def test_running_it_again_changes_nothing(redis: aioredis.Redis, prefix: str) -> None:
    await old_layout(redis, prefix)
    await migrate_layout(redis, prefix)
    before = sorted([k async for k in redis.scan_iter(match="{" + prefix + "}*")])

    again = await migrate_layout(redis, prefix)
    forced = await migrate_layout(redis, prefix, force=True)

    assert again.already_done and again.moved == 0
    assert forced.moved == 0 and not forced.already_done
    assert sorted([k async for k in redis.scan_iter(match="{" + prefix + "}*")]) == before


async def test_keys_an_upgraded_process_wrote_first_are_merged(
    redis: aioredis.Redis, prefix: str
) -> None:
    ids = await old_layout(redis, prefix)
    keys = Keys(prefix)
    # A new publisher and a new CLI ran before any new worker.
    early_payload = event().to_json()
    await redis.xadd(keys.events, {"payload": early_payload})
    await redis.zadd(keys.deliveries_index, {"msg_2": 300.0})
    await redis.zadd(keys.retries, {"msg_1": 3e9})
    await redis.hset(keys.channel_state, "gone", '{"disabled": false}')

    report = await migrate_layout(redis, prefix)

    assert report.merged == 4
    rows = await redis.xrange(keys.events)
    assert [i.decode() for i, _ in rows[:3]] == list(ids.values())
    # Appended behind the old entries (its new id may equal its first one when
    # the clock has not moved on a millisecond: XADD * only orders after the last).
    assert len(rows) == 4 and rows[3][1][b"payload"] == early_payload.encode()
    order = [tuple(int(part) for part in i.decode().split("-")) for i, _ in rows]
    assert order == sorted(order) and order[3] > order[2]
    assert (await redis.xpending(keys.events, GROUP))["pending"] == 1
    assert await redis.zrange(keys.deliveries_index, 0, -1) == [b"msg_1", b"msg_2"]
    assert await redis.zscore(keys.retries, "msg_1") == 3e9, "the earlier due time"
    assert await redis.hget(keys.channel_state, "gone") == b'{"disabled": false}'


async def test_one_worker_migrates_while_the_other_waits(
    redis: aioredis.Redis, prefix: str
) -> None:
    await old_layout(redis, prefix)
    keys = Keys(prefix)
    await redis.set(keys.migration_lock, "someone-else", ex=60)
    waiting = asyncio.create_task(migrate_layout(redis, prefix, wait=10))
    await asyncio.sleep(0)  # let it find the lock taken
    assert not waiting.done()
    await redis.delete(keys.migration_lock)
    report = await asyncio.wait_for(waiting, 10)
    assert report.waited and report.moved == 0

    first, second = await asyncio.gather(
        migrate_layout(redis, prefix), migrate_layout(redis, prefix)
    )
    assert sorted([first.moved, second.moved]) == [0, 8]
    assert await redis.exists(keys.migration_lock) == 0


async def test_an_old_publisher_after_the_migration_is_folded_in(
    redis: aioredis.Redis, prefix: str
) -> None:
    ids = await old_layout(redis, prefix)
    await migrate_layout(redis, prefix)
    old, keys = LegacyKeys(prefix), Keys(prefix)
    late = event()
    await redis.xadd(old.events, {"payload": late.to_json()})  # an old publisher

    assert await fold_legacy_stream(redis, prefix, GROUP) == 1

    rows = await redis.xrange(keys.events)
    assert len(rows) == 4 and rows[-1][1][b"payload"] == late.to_json().encode()
    assert await redis.exists(old.events) == 0, "nothing pending there: dropped"
    assert [i.decode() for i, _ in rows[:3]] == list(ids.values())


async def test_fold_leaves_what_an_old_worker_holds(redis: aioredis.Redis, prefix: str) -> None:
    await migrate_layout(redis, prefix)
    old, keys = LegacyKeys(prefix), Keys(prefix)
    # An old worker recreated its group on the old stream and took one entry.
    taken = await redis.xadd(old.events, {"payload": event().to_json()})
    await redis.xgroup_create(old.events, GROUP, id="0")
    await redis.xreadgroup(GROUP, "old-worker", {old.events: ">"}, count=1)
    await redis.xadd(old.events, {"payload": event().to_json()})

    assert await fold_legacy_stream(redis, prefix, GROUP) == 1

    assert [i for i, _ in await redis.xrange(old.events)] == [taken]
    assert await redis.xlen(keys.events) == 1
    await redis.xack(old.events, GROUP, taken)
    assert await fold_legacy_stream(redis, prefix, GROUP) == 0
    assert await redis.exists(old.events) == 0


async def test_a_new_worker_delivers_what_the_old_layout_left(
    redis: aioredis.Redis, make_settings: Callable[..., Settings], prefix: str
) -> None:
    await old_layout(redis, prefix)
    settings = make_settings(
        channels=[channel_spec("fake")],
        subscriptions=[subscription()],
        consumer={"name": "old-worker"},
    )
    fake = FakeChannel("fake")
    worker = Worker(settings, redis=redis, channels={"fake": fake})
    await worker.start()
    assert await worker.drain() == 2, "its own pending entry, then the unread one"
    assert len(fake.sent) == 2
    assert (await redis.xpending(Keys(prefix).events, GROUP))["pending"] == 0


async def test_fold_takes_over_what_a_dead_old_worker_left_idle(
    redis: aioredis.Redis, prefix: str
) -> None:
    await migrate_layout(redis, prefix)
    old, keys = LegacyKeys(prefix), Keys(prefix)
    held = event()
    await redis.xadd(old.events, {"payload": held.to_json()})
    await redis.xgroup_create(old.events, GROUP, id="0")
    await redis.xreadgroup(GROUP, "old-worker", {old.events: ">"}, count=1)

    assert await fold_legacy_stream(redis, prefix, GROUP, claim_idle=3600) == 0
    assert await fold_legacy_stream(redis, prefix, GROUP, claim_idle=0) == 1

    [(_, fields)] = await redis.xrange(keys.events)
    assert fields[b"payload"] == held.to_json().encode()
    assert await redis.exists(old.events) == 0


async def test_the_migrate_command_moves_an_old_deployment(
    redis: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    from tests.eventbus.cli_support import run

    await old_layout(redis, prefix)
    env = {"EVENTBUS_BROKER__REDIS_URL": redis_url, "EVENTBUS_BROKER__PREFIX": prefix}
    first = await asyncio.to_thread(run, "migrate", env=env)
    assert first.exit_code == 0, first.output
    assert "moved 8 key(s) (8 renamed, 0 merged)" in first.output
    assert [k async for k in redis.scan_iter(match=f"{prefix}:*")] == []
    again = await asyncio.to_thread(run, "migrate", env=env)
    assert again.exit_code == 0 and "nothing to move" in again.output
