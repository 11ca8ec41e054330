"""Partitioned streams (broker.partitions): keys, the publisher's choice, the count guard."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from eventbus.brokers import RedisStreams
from eventbus.brokers.partitions import PartitionCountError, check_partition_count, stored_count
from eventbus.keys import Keys, partition_of, qualified, split_entry
from eventbus.live import parse_live
from eventbus.settings import Settings

from .conftest import envelope

TEAMS = [f"team-{number}" for number in range(30)]
PINNED = [0, 2, 0]  # partition_of(team-1, team-2, acme among 3): BLAKE2b mod 3


def hash_tag(key: str) -> str:
    start = key.index("{")
    return key[start + 1 : key.index("}", start + 1)]


def test_partition_zero_is_the_unpartitioned_layout() -> None:
    keys = Keys("eventbus")
    assert keys.partition(0) == keys
    assert keys.partition(0).events == "{eventbus}:events"
    assert keys.partitions(1) == [keys]


def test_each_partition_has_its_own_tag_and_global_keys_keep_the_base_tag() -> None:
    parts = Keys("eventbus").partitions(4)
    assert [hash_tag(part.events) for part in parts] == [
        "eventbus",
        "eventbus#1",
        "eventbus#2",
        "eventbus#3",
    ]
    for part in parts:
        per_partition = [part.dlq, part.retries, part.retry_job("d"), part.delivery("d")]
        per_partition += [part.groups, part.digest("x"), part.digest_sequence]
        assert {hash_tag(key) for key in per_partition} == {hash_tag(part.events)}
        shared = [part.channel_state, part.breaker("c"), part.cooldown("s", "v")]
        shared += [part.silences, part.console("channels"), part.alerts, part.partition_count]
        assert {hash_tag(key) for key in shared} == {"eventbus"}


def test_a_partition_tag_is_never_another_prefix_tag() -> None:
    # '#' separates prefix and partition, and no prefix may contain it.
    with pytest.raises(ValidationError, match="prefix"):
        Settings(broker={"prefix": "eventbus#1"})
    assert Keys("eventbus").partition(1).tag == "{eventbus#1}"


def test_partition_of_is_stable_and_spreads_teams() -> None:
    # Fixed values: a different hash (or Python's randomised hash()) breaks
    # the agreement between publishers of different processes and versions.
    assert [partition_of(team, 3) for team in ("team-1", "team-2", "acme")] == PINNED
    assert partition_of("anything", 1) == 0
    assert {partition_of(team, 3) for team in TEAMS} == {0, 1, 2}


def test_qualified_ids_round_trip() -> None:
    assert qualified("1700-0", 0) == "1700-0"
    assert split_entry(qualified("1700-0", 2)) == ("1700-0", 2)
    assert split_entry("1700-0") == ("1700-0", 0)
    with pytest.raises(ValueError, match="no number"):
        split_entry("1700-0@x")


def test_partitions_are_refused_with_rabbitmq() -> None:
    with pytest.raises(ValidationError, match="quorum queue"):
        Settings(broker={"kind": "rabbitmq", "partitions": 3})


async def test_publish_many_sends_each_team_to_its_partition_in_order(
    redis: aioredis.Redis, prefix: str
) -> None:
    keys = Keys(prefix)
    streams = RedisStreams(redis, keys, partitions=3)
    items = [(team, envelope(number, team=team)) for number, team in enumerate(TEAMS * 2)]
    ids = await streams.publish_many(items)
    assert len(set(ids)) == len(items)
    for (team, payload), returned in zip(items, ids, strict=True):
        entry_id, part = split_entry(returned)
        assert part == partition_of(team, 3)
        [(_, fields)] = await redis.xrange(keys.partition(part).events, entry_id, entry_id)
        assert fields[b"payload"].decode() == payload
    # one team's events are in its stream in publish order
    rows = await redis.xrange(keys.partition(partition_of("team-4", 3)).events)
    mine = [json.loads(f[b"payload"])["resource"]["id"] for _, f in rows]
    assert [rid for rid in mine if rid in ("c4", "c34")] == ["c4", "c34"]
    assert await stored_count(redis, keys) == 3


async def test_the_live_message_carries_the_partition(redis: aioredis.Redis, prefix: str) -> None:
    streams = RedisStreams(redis, Keys(prefix), partitions=3)
    team = next(team for team in TEAMS if partition_of(team, 3) == 2)
    async with streams.live() as messages:
        returned = await streams.publish(team, envelope(1, team=team))
        message = parse_live(await anext(messages))
    assert message.stream_id == returned and returned.endswith("@2")


async def test_changing_the_count_with_events_waiting_is_refused(
    redis: aioredis.Redis, prefix: str, make_settings: Callable[..., Settings]
) -> None:
    keys = Keys(prefix)
    old = RedisStreams(redis, keys, partitions=3)
    await old.ensure_group("delivery")
    await old.publish_many([(team, envelope(0, team=team)) for team in TEAMS])
    with pytest.raises(PartitionCountError) as raised:
        await check_partition_count(redis, keys, 2)
    text = str(raised.value)
    assert "broker.partitions is 2" in text and "with 3 partition(s)" in text
    assert "unread" in text and "docs/operations.md" in text
    with pytest.raises(PartitionCountError):
        await RedisStreams(redis, keys, partitions=1).publish("team-1", envelope(1))
    assert await stored_count(redis, keys) == 3


async def test_changing_the_count_of_drained_streams_records_it(
    redis: aioredis.Redis, prefix: str
) -> None:
    keys = Keys(prefix)
    old = RedisStreams(redis, keys, partitions=3)
    await old.ensure_group("delivery")
    await old.publish_many([(team, envelope(0, team=team)) for team in TEAMS])
    got = await old.consume("delivery", "c1", 100, None)
    while got:
        await old.ack("delivery", [message.id for message in got])
        got = await old.consume("delivery", "c1", 100, None)
    await check_partition_count(redis, keys, 2)
    assert await stored_count(redis, keys) == 2
    await check_partition_count(redis, keys, 1)
    assert await redis.exists(keys.partition_count) == 0  # one partition: no key, as before
