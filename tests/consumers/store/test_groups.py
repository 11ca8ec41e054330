"""Digest groups in the store: the commit script's grouping and flushing, the claim.

Every time here is an explicit ``now`` (the injected clock of the commit
and the claim), so the due-time arithmetic is checked to the second. Runs on
the real Redis and on the embedded broker, like the store's contract.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest
import redis.asyncio as aioredis

from consumers.store import (
    PENDING_DIGEST,
    Committer,
    DeliveryRecord,
    DeliveryStatus,
    DeliveryStore,
    DueGroup,
    Grouped,
    GroupQueue,
    Settlement,
)
from eventbus.brokers.embedded import EmbeddedRedis
from eventbus.brokers.redis_streams import connect
from eventbus.keys import Keys

T0 = 1_900_000_000.0
WAIT, INTERVAL, LEASE = 30.0, 300.0, 60.0


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


class Store:
    """The committer, the claim and the records of one test prefix."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.keys = Keys(prefix)
        self.client = client
        self.committer = Committer(client, self.keys, "delivery", 3600)
        self.groups = GroupQueue(client, self.keys)
        self.records = DeliveryStore(client, self.keys, 3600)

    async def group(self, number: int, now: float, gid: str = "g1", most: int = 50) -> None:
        await self.committer.commit([Settlement(grouped=[grouped(number, gid, most)])], now)

    async def claim(self, now: float) -> list[DueGroup]:
        return await self.groups.claim(now, LEASE, 10)

    async def flush(self, due: DueGroup, now: float) -> None:
        await self.committer.commit([Settlement(flushed=[due.flush])], now)

    async def refers_to(self, number: int) -> str | None:
        record = await self.records.get(f"msg_{number}")
        assert record is not None and record.status is DeliveryStatus.GROUPED
        return record.refers_to


@pytest.fixture
def store(client: aioredis.Redis, prefix: str) -> Store:
    return Store(client, prefix)


def grouped(number: int, gid: str = "g1", most: int = 50) -> Grouped:
    record = DeliveryRecord(
        id=f"msg_{number}",
        event_id=f"ev_{number}",
        event_type="host.down",
        team_id="team-1",
        subscription="pager",
        channel="hook",
        channel_type="webhook",
        status=DeliveryStatus.GROUPED,
        created_at=T0,
        updated_at=T0,
        reason="folded into the digest of event=host.down",
        refers_to=PENDING_DIGEST,
    )
    return Grouped(
        record=record,
        group_id=gid,
        values=orjson.dumps({"event": "host.down"}),
        payload=orjson.dumps({"id": f"ev_{number}"}),
        wait=WAIT,
        interval=INTERVAL,
        max_events=most,
    )


async def test_first_event_opens_the_group_due_group_wait_later(store: Store) -> None:
    await store.group(1, T0)
    await store.group(2, T0 + 10)  # a later event does not move the due time
    assert await store.groups.next_due("g1") == T0 + WAIT
    assert await store.claim(T0 + WAIT - 1) == [], "not due before group_wait"
    [due] = await store.claim(T0 + WAIT)
    assert (due.subscription, due.channel, due.values) == ("pager", "hook", {"event": "host.down"})
    assert due.count == 2 and due.opened_at == T0
    assert [orjson.loads(env)["id"] for env in due.events] == ["ev_1", "ev_2"]
    assert await store.refers_to(1) == await store.refers_to(2) == due.digest_id
    assert due.digest_id.startswith("dg_g1_")


async def test_after_a_flush_the_next_digest_waits_group_interval(store: Store) -> None:
    await store.group(1, T0)
    [first] = await store.claim(T0 + WAIT)
    await store.group(2, T0 + WAIT + 5)  # arrives while the first digest is sent
    flushed_at = T0 + WAIT + 10
    await store.flush(first, flushed_at)
    assert await store.groups.next_due("g1") == flushed_at + INTERVAL
    assert await store.claim(flushed_at + INTERVAL - 1) == []
    [second] = await store.claim(flushed_at + INTERVAL)
    assert second.digest_id != first.digest_id
    assert [orjson.loads(env)["id"] for env in second.events] == ["ev_2"]
    assert await store.refers_to(2) == second.digest_id
    assert await store.refers_to(1) == first.digest_id


async def test_flushed_group_is_idle_until_its_next_event(store: Store) -> None:
    await store.group(1, T0)
    [first] = await store.claim(T0 + WAIT)
    await store.flush(first, T0 + WAIT)
    assert await store.groups.next_due("g1") is None, "nothing waits: the group is idle"
    # within group_interval of the last flush: due when the interval ends
    await store.group(2, T0 + WAIT + 100)
    assert await store.groups.next_due("g1") == T0 + WAIT + INTERVAL
    [second] = await store.claim(T0 + WAIT + INTERVAL)
    await store.flush(second, T0 + WAIT + INTERVAL)
    # quiet for longer than group_interval: a new event opens the group again
    later = T0 + WAIT + 3 * INTERVAL
    await store.group(3, later)
    assert await store.groups.next_due("g1") == later + WAIT


async def test_regrouping_the_same_event_is_idempotent(store: Store) -> None:
    await store.group(1, T0)
    before = await store.refers_to(1)
    await store.group(1, T0 + 1)  # the entry reclaimed, or published twice
    [due] = await store.claim(T0 + WAIT)
    assert due.count == 1 and len(due.events) == 1
    # after the flush, the event is not added to the next digest either
    await store.flush(due, T0 + WAIT)
    await store.group(1, T0 + WAIT + 1)
    assert await store.groups.next_due("g1") is None
    assert await store.refers_to(1) == before == due.digest_id


async def test_a_leased_digest_is_claimed_again_with_the_same_id_and_events(store: Store) -> None:
    await store.group(1, T0)
    [first] = await store.claim(T0 + WAIT)
    await store.group(2, T0 + WAIT + 1)  # joins the next digest, not the leased one
    assert await store.claim(T0 + WAIT + LEASE - 1) == [], "leased to the first claimer"
    [again] = await store.claim(T0 + WAIT + LEASE)  # the first claimer died
    assert again.digest_id == first.digest_id
    assert again.events == first.events and again.count == 1
    assert again.opened_at == first.opened_at == T0, "not the next digest's opening"
    await store.flush(again, T0 + WAIT + LEASE)
    await store.flush(first, T0 + WAIT + LEASE + 1)  # a late second commit changes nothing
    assert await store.groups.next_due("g1") == T0 + WAIT + LEASE + INTERVAL


async def test_digest_keeps_the_first_max_events_and_counts_the_rest(store: Store) -> None:
    for number in range(5):
        await store.group(number, T0 + number, most=3)
    [due] = await store.claim(T0 + WAIT)
    assert due.count == 5
    assert [orjson.loads(env)["id"] for env in due.events] == ["ev_0", "ev_1", "ev_2"]


async def test_groups_are_independent(store: Store) -> None:
    await store.group(1, T0, gid="g1")
    await store.group(2, T0 + 20, gid="g2")
    [due] = await store.claim(T0 + WAIT)
    assert due.group_id == "g1"
    [other] = await store.claim(T0 + 20 + WAIT)
    assert other.group_id == "g2" and other.digest_id != due.digest_id


async def test_group_keys_share_the_hash_tag_and_expire(store: Store, prefix: str) -> None:
    await store.group(1, T0)
    found = [key.decode() async for key in store.client.scan_iter(match="*" + prefix + "*")]
    assert found and all(key.startswith("{" + prefix + "}:") for key in found), found
    for key in found:
        if key not in (store.keys.groups, store.keys.digest_sequence, store.keys.deliveries_index):
            assert await store.client.ttl(key) > 0, f"{key} never expires"


async def test_concurrent_claims_give_a_digest_to_one_worker(store: Store) -> None:
    for number, gid in enumerate(("g1", "g2", "g3")):
        await store.group(number, T0, gid=gid)
    claims = await asyncio.gather(*(store.groups.claim(T0 + WAIT, LEASE, 1) for _ in range(6)))
    claimed = [due.digest_id for claim in claims for due in claim]
    assert len(claimed) == len(set(claimed)) == 3


@pytest.mark.parametrize("seed", range(8))
async def test_random_interleavings_lose_no_event_and_keep_the_timing(
    store: Store, seed: int
) -> None:
    """Events, claims, crashed claimers and flushes in a random order, then the rest."""
    rng = random.Random(seed)
    now, numbers = T0, 0
    held: list[tuple[DueGroup, float]] = []  # claimed, not yet flushed
    sent: dict[str, DueGroup] = {}  # digest id -> the claim that was flushed
    claims: list[tuple[DueGroup, float]] = []
    flushes: dict[str, list[float]] = {}  # group -> flush times
    for _ in range(150):
        now += rng.choice([0.0, 1.0, 7.0, 40.0, 90.0])
        action = rng.random()
        if action < 0.55:
            number = rng.randrange(numbers + 1) if rng.random() < 0.2 else numbers
            numbers += number == numbers
            await store.group(number, now, gid=rng.choice(["g1", "g2"]))
        elif action < 0.8:
            for due in await store.claim(now):
                claims.append((due, now))
                if rng.random() < 0.8:  # else the claimer dies: the lease runs out
                    held.append((due, now))
        elif held:
            due, _ = held.pop(rng.randrange(len(held)))
            await store.flush(due, now)
            if due.digest_id not in sent:  # a second commit of a digest changes nothing
                flushes.setdefault(due.group_id, []).append(now)
            sent.setdefault(due.digest_id, due)
    for _ in range(50):  # the rest: whatever is still due, sent
        now += INTERVAL + LEASE
        for due, _ in held:
            await store.flush(due, now)
            if due.digest_id not in sent:
                flushes.setdefault(due.group_id, []).append(now)
            sent.setdefault(due.digest_id, due)
        held = [(due, now) for due in await store.claim(now)]
        claims += held
        if not held and await store.groups.due_count(now + 10 * INTERVAL) == 0:
            break
    assert await store.client.zcard(store.keys.groups) == 0, "everything was sent"

    carried: dict[str, str] = {}
    for did, due in sent.items():
        for envelope in due.events:
            event_id = orjson.loads(envelope)["id"]
            assert event_id not in carried, f"{event_id} in two digests"
            carried[event_id] = did
    assert sorted(carried) == sorted(f"ev_{n}" for n in range(numbers)), "no event lost"
    for number in range(numbers):
        assert await store.refers_to(number) == carried[f"ev_{number}"]
    first_claims = {}
    for due, at in claims:
        first_claims.setdefault(due.digest_id, (due, at))
    for due, at in first_claims.values():
        times = flushes.get(due.group_id, [])
        # the first event waits group_wait, unless the group's last digest was
        # long enough ago (then the digest goes when group_interval since it ends)
        assert at >= due.opened_at + WAIT or any(
            flushed <= due.opened_at and at >= flushed + INTERVAL for flushed in times
        ), "sent before group_wait"
        before = [flushed for flushed in times if flushed < at]  # not its own
        assert not before or at >= before[-1] + INTERVAL, "two digests within group_interval"
