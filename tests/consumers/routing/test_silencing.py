"""The silence book (matching, records) and the silences in Redis (store, notices, polling)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

import consumers.store.silences as silences_module
from consumers.routing.silence_rules import new_silence
from consumers.routing.silencing import SilenceBook
from consumers.store import DeliveryStatus, Settlement, delivery_id
from consumers.store.silences import Silence, SilenceError, SilenceStore
from consumers.work import Target, Work
from eventbus.envelope import Event
from eventbus.keys import Keys
from eventbus.settings import Settings, SubscriptionSpec

from ..fakes import event, subscription

NOW = 1_800_000_000.0


def silence(team: str = "team-1", *matchers: str, now: float = NOW, hours: float = 2) -> Silence:
    return new_silence(
        team=team,
        matchers=list(matchers or ["event=host.*"]),
        duration=hours * 3600,
        comment="maintenance",
        created_by="alice",
        now=now,
    )


def work_of(ev: Event) -> Work:
    sub = SubscriptionSpec.model_validate(subscription("all", ("ops", "pager")))
    targets = [
        Target(sub, name, delivery_id(ev.id, sub.name, name), 0, NOW) for name in sub.channels
    ]
    return Work(Settlement(ack="1-0"), ev, b"", targets)


def host_down(team: str = "team-1", **kw: Any) -> Event:
    return event(event="host.down", team_id=team, **kw)


def book_of(*held: Silence) -> SilenceBook:
    book = SilenceBook()
    book.reconfigure(
        Settings(channels=[{"name": "ops", "type": "console"}, {"name": "pager", "type": "ntfy"}])
    )
    book.replace(held)
    return book


def test_a_matching_silence_settles_every_target_silenced() -> None:
    held = silence()
    work = work_of(host_down())
    book_of(held).apply(work, NOW + 60)
    assert work.targets == []
    records = work.settlement.records
    assert [r.status for r in records] == [DeliveryStatus.SILENCED] * 2
    assert {r.refers_to for r in records} == {held.id}
    assert [r.channel_type for r in records] == ["console", "ntfy"]
    reason = records[0].reason or ""
    assert held.id in reason and "alice" in reason and "maintenance" in reason
    assert "until 2027-01-15T10:00:00Z" in reason


@pytest.mark.parametrize(
    ("ev", "now"),
    [
        pytest.param(host_down(team="team-2"), NOW + 60, id="another-team"),
        pytest.param(event(event="backup.failed"), NOW + 60, id="not-matching"),
        pytest.param(host_down(), NOW + 2 * 3600, id="ended-at-its-end"),
        pytest.param(host_down(), NOW - 1, id="not-started"),
    ],
)
def test_silence_leaves_alone(ev: Event, now: float) -> None:
    work = work_of(ev)
    book_of(silence()).apply(work, now)
    assert len(work.targets) == 2 and work.settlement.records == []


def test_every_matcher_of_a_silence_must_match() -> None:
    book = book_of(silence("team-1", "event=host.*", "metadata.region=eu-west"))
    elsewhere, there = (
        work_of(host_down(metadata={"region": "us"})),
        work_of(host_down(metadata={"region": "eu-west"})),
    )
    book.apply(elsewhere, NOW)
    book.apply(there, NOW)
    assert len(elsewhere.targets) == 2 and there.targets == []


def test_a_stored_silence_that_no_longer_parses_is_left_out() -> None:
    good = silence()
    bad = Silence("01J0000000000000000000000B", "team-1", ("nope",), NOW, NOW + 60)
    book = book_of(good, bad)
    assert book.silences == [good]


# -- in Redis ----------------------------------------------------------------


@pytest.fixture
def store(redis: aioredis.Redis, prefix: str) -> SilenceStore:
    return SilenceStore(redis, Keys(prefix))


@pytest.mark.integration
async def test_store_add_load_get_expire(store: SilenceStore, redis: aioredis.Redis) -> None:
    now = time.time()
    one, two = silence(now=now), silence("team-2", "severity=critical", now=now, hours=1)
    assert await store.add(one, now) == 1
    assert await store.add(two, now) == 2
    version, held = await store.load(now)
    assert version == 2 and held == [two, one], "soonest end first"
    assert await store.get(one.id, now) == one
    assert await store.get(one.id, one.ends_at) is None, "ended"
    ttl = await redis.pttl(store.keys.silence(one.id))
    assert 7_190_000 < ttl <= 7_200_000, "the key expires when the silence ends"
    assert await store.expire(one.id)
    assert not await store.expire(one.id), "none left with that id"
    assert await store.version() == 3
    assert (await store.load(now))[1] == [two]


@pytest.mark.integration
async def test_store_refuses_an_ended_silence_and_caps_the_count(
    store: SilenceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    with pytest.raises(SilenceError, match="ends before"):
        await store.add(silence(now=now - 3 * 3600), now)
    monkeypatch.setattr(silences_module, "MAX_SILENCES", 2)
    await store.add(silence(now=now), now)
    await store.add(silence(now=now), now)
    with pytest.raises(SilenceError, match="2 silences are in force already"):
        await store.add(silence(now=now), now)


@pytest.fixture
async def watch(store: SilenceStore) -> AsyncIterator[Callable[[float], Awaitable[SilenceBook]]]:
    """A book watching the store (polling every ``refresh`` s), once it has loaded."""
    stopping = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def start(refresh: float) -> SilenceBook:
        book = SilenceBook(store, refresh=refresh)
        tasks.append(asyncio.create_task(book.watch(stopping)))
        await asyncio.wait_for(book.until_version(0), 5)
        return book

    yield start
    stopping.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)


@pytest.mark.integration
async def test_a_notice_reloads_the_book(watch: Any, store: SilenceStore) -> None:
    watched = await watch(30.0)  # the poll would not come in time: only the notice can
    now = time.time()
    held = silence(now=now)
    version = await store.add(held, now)
    await asyncio.wait_for(watched.until_version(version), 1)
    assert watched.silences == [held]
    await store.expire(held.id)
    await asyncio.wait_for(watched.until_version(version + 1), 1)
    assert watched.silences == []


@pytest.mark.integration
async def test_a_lost_notice_is_caught_by_the_version_poll(
    watch: Any, store: SilenceStore, redis: aioredis.Redis
) -> None:
    watched = await watch(0.2)
    now = time.time()
    held = silence(now=now)
    # What add() does, without the Pub/Sub notice (as if it were lost).
    await redis.set(store.keys.silence(held.id), held.to_json(), pxat=int(held.ends_at * 1000))
    await redis.zadd(store.keys.silences, {held.id: int(held.ends_at * 1000)})
    version = int(await redis.incr(store.keys.silences_version))
    await asyncio.wait_for(watched.until_version(version), 1)
    assert watched.silences == [held]


@pytest.mark.integration
async def test_an_unreadable_silence_is_skipped(store: SilenceStore, redis: aioredis.Redis) -> None:
    now = time.time()
    held = silence(now=now)
    await store.add(held, now)
    await redis.set(store.keys.silence("BROKEN"), b"{not json")
    await redis.zadd(store.keys.silences, {"BROKEN": int(held.ends_at * 1000)})
    assert (await store.load(now))[1] == [held]


@pytest.mark.integration
async def test_the_book_keeps_its_silences_while_redis_is_down() -> None:
    client = aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    book = SilenceBook(SilenceStore(client, Keys("x")), refresh=0.1)
    book.replace([silence(now=time.time())])
    beats: list[float] = []
    retried = asyncio.Event()

    def beat() -> None:
        beats.append(time.time())
        if len(beats) >= 3:
            retried.set()

    stopping = asyncio.Event()
    task = asyncio.create_task(book.watch(stopping, beat))
    try:
        # It retries (and says it is alive) instead of giving up.
        await asyncio.wait_for(retried.wait(), 10)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 5)
        await client.aclose()
    assert len(book.silences) == 1
