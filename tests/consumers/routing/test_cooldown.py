"""Cooldown keys as a table; the windows on the real Redis (one script call per batch)."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from consumers.routing.cooldown import Cooldowns, cooldown_key, describe_key
from consumers.store import DeliveryStatus, Settlement, delivery_id
from consumers.work import Target, Work
from eventbus.envelope import Event
from eventbus.errors import BrokerError
from eventbus.keys import Keys
from eventbus.settings import SubscriptionSpec

from ..fakes import event, subscription

NOW = 1_800_000_000.0


def spec(name: str = "pager", **kw: Any) -> SubscriptionSpec:
    kw.setdefault("cooldown", "1h")
    return SubscriptionSpec.model_validate(subscription(name, ("a", "b"), **kw))


def host(host_id: str = "h1", **kw: Any) -> Event:
    kw.setdefault("metadata", {"region": "eu"})
    return event(event="host.down", resource={"type": "host", "id": host_id}, **kw)


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        pytest.param(None, '["team-1","host.down","host:h1"]', id="default-team-event-resource"),
        pytest.param(["event", "resource.id"], '["host.down","h1"]', id="event-resource-id"),
        pytest.param(["metadata.region"], '["eu"]', id="metadata"),
        pytest.param(["metadata.zone"], "[null]", id="absent-is-null"),
        pytest.param(["severity", "outcome"], '["info","success"]', id="severity-outcome"),
    ],
)
def test_cooldown_key(paths: list[str] | None, expected: str) -> None:
    kw = {} if paths is None else {"cooldown_key": paths}
    assert cooldown_key(spec(**kw), host()) == expected


def test_keys_differ_by_value_and_by_subscription() -> None:
    keys = Keys("p")
    one, other = spec("one"), spec("two")
    assert keys.cooldown("one", cooldown_key(one, host("h1"))) != keys.cooldown(
        "one", cooldown_key(one, host("h2"))
    )
    assert keys.cooldown("one", cooldown_key(one, host())) != keys.cooldown(
        "two", cooldown_key(other, host())
    )
    assert keys.cooldown("one", "[]").startswith("{p}:"), "under the hash tag"


def test_describe_key_names_paths_and_values() -> None:
    text = describe_key(spec(cooldown_key=["event", "metadata.zone"]), host())
    assert text == "pager[event=host.down, metadata.zone=<absent>]"


def work_of(ev: Event, *specs: SubscriptionSpec) -> Work:
    targets = [
        Target(sub, channel, delivery_id(ev.id, sub.name, channel), 0, NOW)
        for sub in specs
        for channel in sub.channels
    ]
    return Work(Settlement(ack="1-0"), ev, b"", targets)


@pytest.fixture
def cooldowns(redis: aioredis.Redis, prefix: str) -> Cooldowns:
    return Cooldowns(redis, Keys(prefix))


@pytest.mark.integration
async def test_first_event_of_a_key_proceeds_the_rest_are_suppressed(
    cooldowns: Cooldowns,
) -> None:
    pager = spec()
    first, second, elsewhere = host("h1"), host("h1"), host("h2")
    works = [work_of(first, pager), work_of(second, pager), work_of(elsewhere, pager)]

    await cooldowns.apply(works, NOW)

    assert [t.channel_name for t in works[0].targets] == ["a", "b"], "every channel of it"
    assert works[1].targets == []
    assert [t.channel_name for t in works[2].targets] == ["a", "b"], "another key"
    records = works[1].settlement.records
    assert [r.status for r in records] == [DeliveryStatus.SUPPRESSED] * 2
    assert records[0].refers_to == delivery_id(first.id, "pager", "a")
    reason = records[0].reason or ""
    assert "pager[team=team-1, event=host.down, resource=host:h1]" in reason
    assert "one notification per 1h" in reason and "suppressed until 2027-" in reason


@pytest.mark.integration
async def test_a_later_batch_and_a_reclaimed_entry(cooldowns: Cooldowns) -> None:
    pager = spec()
    first = host()
    await cooldowns.apply([work_of(first, pager)], NOW)

    later = work_of(host(), pager)
    await cooldowns.apply([later], NOW)
    assert later.targets == [] and len(later.settlement.records) == 2

    reclaimed = work_of(first, pager)  # the same event again, after a crash
    await cooldowns.apply([reclaimed], NOW)
    assert len(reclaimed.targets) == 2, "its own reservation: it proceeds"


@pytest.mark.integration
async def test_window_end_lets_the_next_one_through(
    cooldowns: Cooldowns, redis: aioredis.Redis, prefix: str
) -> None:
    pager = spec()
    await cooldowns.apply([work_of(host(), pager)], NOW)
    key = Keys(prefix).cooldown("pager", cooldown_key(pager, host()))
    ttl = await redis.pttl(key)
    assert 3_590_000 < ttl <= 3_600_000, "PX is the window"
    await redis.delete(key)  # what the expiry does at the window's end
    after = work_of(host(), pager)
    await cooldowns.apply([after], NOW)
    assert len(after.targets) == 2


@pytest.mark.integration
async def test_subscriptions_without_cooldown_are_left_alone(cooldowns: Cooldowns) -> None:
    plain = spec("plain", cooldown=None)
    works = [work_of(host(), plain), work_of(host(), plain)]
    await cooldowns.apply(works, NOW)
    assert [len(w.targets) for w in works] == [2, 2]


async def test_no_redis_no_cooldown() -> None:
    works = [work_of(host(), spec()), work_of(host(), spec())]
    await Cooldowns().apply(works, NOW)
    assert [len(w.targets) for w in works] == [2, 2]


@pytest.mark.integration
async def test_redis_errors_raise_so_the_batch_stays_pending() -> None:
    client = aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    try:
        with pytest.raises(BrokerError, match="reserve cooldown windows"):
            await Cooldowns(client, Keys("x")).apply([work_of(host(), spec())], NOW)
    finally:
        await client.aclose()
