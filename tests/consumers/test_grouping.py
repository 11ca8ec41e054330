"""Grouping into digests: group keys, the grouping stage, digest rendering, the worker.

The worker tests run in process against the real Redis with an injected
clock: a digest is sent only once the clock passes its due time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
import structlog.testing

from consumers.channels.base import OutcomeClass, SendResult
from consumers.digests import (
    BODY_BUDGET,
    TIMES,
    DigestMessage,
    digest_job,
    digest_message,
    document,
    is_digest,
    lead_event,
)
from consumers.routing.grouping import Grouper, group_id
from consumers.store import (
    PENDING_DIGEST,
    DeliveryStatus,
    DueGroup,
    Settlement,
    delivery_id,
)
from consumers.work import Target, Work
from consumers.worker import Worker
from eventbus.envelope import DEFAULT_LIMITS, Event
from eventbus.keys import Keys
from eventbus.settings import Settings, SubscriptionSpec

from .fakes import FakeChannel, channel_spec, event, subscription
from .test_worker import Clock, pending

# -- group keys ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        pytest.param(
            ("s", "c", ["t1", "host.down"]), ("s", "c", ["t1", "host.down"]), True, id="same"
        ),
        pytest.param(("s", "c", ["t1"]), ("s", "c", ["t2"]), False, id="value"),
        pytest.param(("s", "c", ["t1"]), ("s2", "c", ["t1"]), False, id="subscription"),
        pytest.param(("s", "c", ["t1"]), ("s", "c2", ["t1"]), False, id="channel"),
        pytest.param(("s", "c", [None]), ("s", "c", ["None"]), False, id="absent-is-not-a-word"),
        pytest.param(("s", "c", ["a", "b"]), ("s", "c", ["b", "a"]), False, id="order"),
        pytest.param(("s", "c", ["a\x00b"]), ("s", "c", ["a", "b"]), False, id="no-joining"),
    ],
)
def test_group_id(
    left: tuple[str, str, list[str | None]], right: tuple[str, str, list[str | None]], same: bool
) -> None:
    assert (group_id(*left) == group_id(*right)) is same
    assert len(group_id(*left)) == 24


def spec(**kw: Any) -> SubscriptionSpec:
    return SubscriptionSpec.model_validate(
        {"name": "pager", "team": "*", "events": ["*"], "channels": ["hook"], **kw}
    )


def work_for(ev: Event, *subs: SubscriptionSpec) -> Work:
    targets = [
        Target(sub, name, delivery_id(ev.id, sub.name, name), 0, 10.0)
        for sub in subs
        for name in sub.channels
    ]
    return Work(Settlement(ack="1-0"), ev, ev.to_json().encode(), targets)


@pytest.mark.parametrize(
    ("group_by", "values"),
    [
        pytest.param(["team", "event"], {"team": "team-1", "event": "host.down"}, id="team-event"),
        pytest.param(["resource"], {"resource": "host:h1"}, id="resource"),
        pytest.param(["metadata.region"], {"metadata.region": "eu"}, id="metadata"),
        pytest.param(["metadata.missing"], {"metadata.missing": None}, id="absent"),
        pytest.param(["severity"], {"severity": "error"}, id="effective-severity"),
    ],
)
def test_grouper_settles_grouping_targets(group_by: list[str], values: dict[str, Any]) -> None:
    ev = event(event="host.down", outcome="error", resource={"type": "host", "id": "h1"})
    ev = ev.model_copy(update={"metadata": {"region": "eu"}})
    grouping, plain = spec(group_by=group_by, channels=["hook", "chat"]), spec(name="log")
    work = work_for(ev, grouping, plain)
    grouper = Grouper()
    grouper.reconfigure(
        Settings(
            channels=[channel_spec("hook"), channel_spec("chat")],
            subscriptions=[subscription("pager", ("hook", "chat"), group_by=group_by)],
        )
    )

    grouper.apply([work], now=20.0)

    assert [t.subscription.name for t in work.targets] == ["log"], "the other one is sent"
    assert work.settlement.records == [], "grouped records are written by the commit script"
    items = work.settlement.grouped
    assert [item.record.channel for item in items] == ["hook", "chat"]
    for item in items:
        assert item.record.status is DeliveryStatus.GROUPED
        assert item.record.refers_to == PENDING_DIGEST
        assert item.record.channel_type == "console" and item.record.updated_at == 20.0
        assert orjson.loads(item.values) == values
        assert item.payload == work.payload
        assert item.group_id == group_id("pager", item.record.channel, list(values.values()))
        assert (item.wait, item.interval, item.max_events) == (30.0, 300.0, 50)


def test_grouper_leaves_subscriptions_without_group_by() -> None:
    work = work_for(event(), spec())
    Grouper().apply([work], now=1.0)
    assert len(work.targets) == 1 and not work.settlement.grouped


def test_grouper_does_nothing_when_no_subscription_groups() -> None:
    grouper = Grouper()
    grouper.reconfigure(Settings(channels=[channel_spec("hook")], subscriptions=[subscription()]))
    work = work_for(event(), spec(group_by=["team"]))  # not in the configuration
    grouper.apply([work], now=1.0)
    assert len(work.targets) == 1 and not work.settlement.grouped


# -- digest payloads -------------------------------------------------------------


def due(count: int, shown: int, **kw: Any) -> DueGroup:
    events = [
        event(event="host.down", resource={"type": "host", "id": f"h{n}"}, **kw)
        for n in range(shown)
    ]
    return DueGroup(
        group_id="g1",
        digest_id="dg_g1_7",
        subscription="pager",
        channel="hook",
        values={"team": "team-1", "event": "host.down"},
        opened_at=5.0,
        count=count,
        events=tuple(ev.to_json().encode() for ev in events),
    )


def test_document_shape() -> None:
    group = due(7, 5)
    doc = orjson.loads(document(group))
    assert list(doc) == ["type", "group", "count", "events", "truncated"]
    assert doc["type"] == "eventbus.digest"
    assert doc["group"] == {"team": "team-1", "event": "host.down"}
    assert (doc["count"], doc["truncated"], len(doc["events"])) == (7, 2, 5)
    assert [Event.model_validate(item).resource.id for item in doc["events"]] == [
        f"h{n}" for n in range(5)
    ]
    assert is_digest(document(group))
    assert not is_digest(group.events[0]), "an envelope is not a digest"


def test_digest_job_is_the_first_attempt_and_empty_digests_have_none() -> None:
    job = digest_job(due(3, 3))
    assert job is not None
    assert (job.delivery_id, job.subscription, job.channel) == ("dg_g1_7", "pager", "hook")
    assert (job.attempts, job.created_at) == (0, 5.0)
    assert lead_event(job.payload, DEFAULT_LIMITS).resource.id == "h0"
    assert digest_job(due(0, 0)) is None


def test_chat_message_title_and_lines() -> None:
    payload = document(due(5, 5))
    message = digest_message(payload, spec(), "dg_g1_7", DEFAULT_LIMITS)
    assert isinstance(message, DigestMessage)
    assert message.title == f"5 {TIMES} host.down (team-1)"
    assert TIMES == "\u00d7", "the multiplication sign"
    lines = message.body.split("\n")
    assert lines[0] == "Group: team=team-1, event=host.down"
    assert len(lines) == 6 and all("host.down" in line for line in lines[1:])
    assert "host h3" in lines[4]
    assert message.document == payload and message.delivery_id == "dg_g1_7"
    assert message.event.resource.id == "h0", "channels read the first event"


def test_chat_message_stays_within_its_budget_and_says_what_is_left() -> None:
    long = {"error": "x" * 200, "outcome": "error"}
    message = digest_message(document(due(1000, 50, **long)), spec(), "dg", DEFAULT_LIMITS)
    assert len(message.body) <= BODY_BUDGET + 30
    last = message.body.split("\n")[-1]
    shown = len(message.body.split("\n")) - 2
    assert last == f"… and {1000 - shown} more"


def test_chat_title_lists_several_types_and_teams() -> None:
    events = [event(event=f"host.t{n}", team_id=f"team-{n}") for n in range(5)]
    group = DueGroup("g", "dg", "s", "c", {}, 0.0, 5, tuple(e.to_json().encode() for e in events))
    message = digest_message(document(group), None, "dg", DEFAULT_LIMITS)
    assert message.title == f"5 {TIMES} host.t0, host.t1, host.t2, … (team-0, team-1, team-2, …)"
    assert not message.body.startswith("Group:"), "no group_by values to show"


# -- the worker (real Redis, injected clock) ---------------------------------------


@pytest.fixture
def grouping(redis: aioredis.Redis, make_settings: Callable[..., Settings]) -> dict[str, Any]:
    clock = Clock()

    def settings(**sub: Any) -> Settings:
        routing = {"group_by": ["team", "event"], "group_wait": "30s", "group_interval": "5m"}
        return make_settings(
            consumer={"name": "w1", "retry_jitter": 0},
            channels=[channel_spec("fake")],
            subscriptions=[subscription(**{**routing, **sub})],
        )

    def worker(s: Settings, fake: FakeChannel, name: str = "w1") -> Worker:
        s = s.model_copy(update={"consumer": s.consumer.model_copy(update={"name": name})})
        return Worker(s, redis=redis, channels={"fake": fake}, clock=clock)

    return {"settings": settings, "worker": worker, "clock": clock}


async def publish(w: Worker, *events: Event) -> None:
    for ev in events:
        await w.streams.publish(ev.team_id, ev.to_json())


def host_down(number: int, team: str = "team-1") -> Event:
    return event(
        event="host.down",
        outcome="error",
        team_id=team,
        resource={"type": "host", "id": f"h{number}"},
    )


@pytest.mark.integration
async def test_events_wait_for_group_wait_then_go_as_one_digest(
    grouping: dict[str, Any], redis: aioredis.Redis
) -> None:
    s, clock, fake = grouping["settings"](), grouping["clock"], FakeChannel("fake")
    w = grouping["worker"](s, fake)
    await w.start()
    events = [host_down(n) for n in range(5)] + [host_down(9, team="team-2")]
    await publish(w, *events)

    await w.drain()
    assert fake.sent == [], "nothing is sent before group_wait"
    assert await pending(redis, s) == 0, "grouped entries are acked"
    refers = {}
    for ev in events:
        record = await w.store.get(delivery_id(ev.id, "all", "fake"))
        assert record is not None and record.status is DeliveryStatus.GROUPED
        assert record.refers_to is not None and record.refers_to.startswith("dg_")
        refers[ev.id] = record.refers_to
    assert len(set(refers.values())) == 2, "one digest per (team, event)"

    clock.now += 30
    await w.drain()

    assert len(fake.sent) == 2
    by_title = {m.title: m for m in fake.sent}
    team1 = by_title[f"5 {TIMES} host.down (team-1)"]
    assert f"1 {TIMES} host.down (team-2)" in by_title
    assert isinstance(team1, DigestMessage)
    doc = orjson.loads(team1.document)
    assert [item["id"] for item in doc["events"]] == [ev.id for ev in events[:5]]
    assert all(refers[item["id"]] == team1.delivery_id for item in doc["events"])
    record = await w.store.get(team1.delivery_id)
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert record.subscription == "all" and record.channel == "fake"

    clock.now += 3600
    await w.drain()
    assert len(fake.sent) == 2, "a digest is sent once"


@pytest.mark.integration
async def test_later_events_wait_group_interval_after_the_last_digest(
    grouping: dict[str, Any],
) -> None:
    s, clock, fake = grouping["settings"](), grouping["clock"], FakeChannel("fake")
    w = grouping["worker"](s, fake)
    await w.start()
    await publish(w, host_down(1))
    await w.drain()
    clock.now += 30
    await w.drain()
    assert len(fake.sent) == 1

    await publish(w, host_down(2), host_down(3))
    clock.now += 60
    await w.drain()
    assert len(fake.sent) == 1, "within group_interval of the last digest"
    clock.now += 240
    await w.drain()
    titles = [m.title for m in fake.sent]
    assert titles == [f"1 {TIMES} host.down (team-1)", f"2 {TIMES} host.down (team-1)"]


@pytest.mark.integration
async def test_a_failed_digest_is_retried_with_the_same_id_and_events(
    grouping: dict[str, Any],
) -> None:
    s, clock = grouping["settings"](retry=["10s"]), grouping["clock"]
    fake = FakeChannel("fake", SendResult(OutcomeClass.RETRYABLE, status=503, error="busy"))
    w = grouping["worker"](s, fake)
    await w.start()
    await publish(w, host_down(1), host_down(2))
    await w.drain()
    clock.now += 30
    await w.drain()
    [first] = fake.sent
    record = await w.store.get(first.delivery_id)
    assert record is not None and record.status is DeliveryStatus.RETRYING

    await publish(w, host_down(3))  # joins the next digest, not the retried one
    clock.now += 10
    await w.drain()

    assert [m.delivery_id for m in fake.sent] == [first.delivery_id] * 2
    assert isinstance(fake.sent[1], DigestMessage) and isinstance(first, DigestMessage)
    assert fake.sent[1].document == first.document
    record = await w.store.get(first.delivery_id)
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert record.attempts == 2


@pytest.mark.integration
async def test_reclaimed_grouped_entry_is_not_grouped_twice(
    grouping: dict[str, Any], redis: aioredis.Redis
) -> None:
    s, clock, fake = grouping["settings"](), grouping["clock"], FakeChannel("fake")
    w = grouping["worker"](s, fake)
    await w.start()
    ev = host_down(1)
    await publish(w, ev, ev)  # the same event twice (a repeated publish)
    await w.drain()
    clock.now += 30
    await w.drain()
    await publish(w, ev)  # and again after its digest went
    await w.drain()
    clock.now += 3600
    await w.drain()
    [digest] = fake.sent
    assert digest.title == f"1 {TIMES} host.down (team-1)"
    assert await redis.zcard(Keys(s.broker.prefix).groups) == 0, "no digest left waiting"


@pytest.mark.integration
async def test_a_removed_subscription_ends_the_flush_with_a_failed_digest(
    grouping: dict[str, Any], make_settings: Callable[..., Settings]
) -> None:
    s, clock, fake = grouping["settings"](), grouping["clock"], FakeChannel("fake")
    w = grouping["worker"](s, fake)
    await w.start()
    ev = host_down(1)
    await publish(w, ev)
    await w.drain()
    grouped = await w.store.get(delivery_id(ev.id, "all", "fake"))
    assert grouped is not None and grouped.refers_to is not None
    other = make_settings(
        consumer={"name": "w1"},
        channels=[channel_spec("fake")],
        subscriptions=[subscription("other")],
    )
    w.reconfigure(other, {"fake": fake})
    clock.now += 30
    await w.drain()
    assert fake.sent == []
    digest = await w.store.get(grouped.refers_to)
    assert digest is not None and digest.status is DeliveryStatus.FAILED
    assert "subscription removed" in (digest.reason or "")
    assert await w.redis.zcard(w.keys.groups) == 0, "the group is not claimed forever"


def test_grouper_logs_a_line_per_grouped_delivery() -> None:
    work = work_for(event(event="host.down"), spec(group_by=["event"]))
    with structlog.testing.capture_logs() as logs:
        Grouper().apply([work], now=1.0)
    [line] = [entry for entry in logs if entry["event"] == "delivery.grouped"]
    assert line["delivery_id"] == work.settlement.grouped[0].record.id
    assert line["group_id"] == work.settlement.grouped[0].group_id
    assert line["subscription"] == "pager" and line["channel"] == "hook"


@pytest.mark.integration
async def test_a_rate_limited_digest_waits_without_counting_an_attempt(
    grouping: dict[str, Any],
) -> None:
    s, clock = grouping["settings"](), grouping["clock"]
    limited = SendResult(OutcomeClass.RATE_LIMITED, retry_after=5.0)
    fake = FakeChannel("fake", limited)
    w = grouping["worker"](s, fake)
    await w.start()
    await publish(w, host_down(1), host_down(2))
    await w.drain()
    clock.now += 30
    await w.drain()
    [first] = fake.sent
    record = await w.store.get(first.delivery_id)
    assert record is not None and record.status is DeliveryStatus.RETRYING
    assert record.attempts == 0, "being rate limited is not a failed attempt"
    assert await w.redis.zcard(w.keys.groups) == 0, "the flush is done: the retry has the digest"

    clock.now += 5
    await w.drain()
    assert [m.delivery_id for m in fake.sent] == [first.delivery_id] * 2
    record = await w.store.get(first.delivery_id)
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert record.attempts == 1
