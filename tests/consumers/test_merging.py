"""One delivery per channel per event: merging at dispatch, overlaps for config check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from consumers.dispatch import Dispatcher
from consumers.metrics import Metrics
from consumers.routing.merging import globs_overlap, overlaps
from consumers.store import DeliveryStatus, delivery_id
from consumers.work import Work
from eventbus.brokers.redis_streams import StreamEntry
from eventbus.settings import Settings, SubscriptionSpec

from .fakes import FakeChannel, channel_spec, event, subscription

Build = Callable[..., tuple[Dispatcher, dict[str, FakeChannel]]]


@pytest.fixture
def build() -> Build:
    def make(*subs: dict[str, Any]) -> tuple[Dispatcher, dict[str, FakeChannel]]:
        names = ("hook", "chat")
        settings = Settings(
            channels=[channel_spec(name) for name in names], subscriptions=list(subs)
        )
        fakes = {name: FakeChannel(name) for name in names}
        return Dispatcher(settings, fakes, metrics=Metrics()), fakes

    return make


async def routed(dispatcher: Dispatcher, stream_entry: StreamEntry) -> Work:
    """Decode and match like the pipeline, then route (it routes screened batches)."""
    work = dispatcher.entry_work(stream_entry)
    await dispatcher.router.decide([work], dispatcher.clock())
    return work


def entry(**overrides: Any) -> tuple[StreamEntry, str]:
    ev = event(**overrides)
    return StreamEntry("7-0", {b"payload": ev.to_json().encode()}), ev.id


async def test_two_subscriptions_one_channel_one_delivered_one_merged(build: Build) -> None:
    dispatcher, fakes = build(
        subscription("first", ("hook",), title_template="first: {{ event.event }}"),
        subscription("second", ("hook", "chat"), title_template="second: {{ event.event }}"),
    )
    stream_entry, event_id = entry()
    work = await routed(dispatcher, stream_entry)
    settlement = await dispatcher.send(work)

    by_id = {record.id: record for record in settlement.records}
    delivering = by_id[delivery_id(event_id, "first", "hook")]
    merged = by_id[delivery_id(event_id, "second", "hook")]
    other = by_id[delivery_id(event_id, "second", "chat")]
    assert len(by_id) == 3
    assert delivering.status is DeliveryStatus.DELIVERED
    assert merged.status is DeliveryStatus.MERGED
    assert merged.refers_to == delivering.id
    assert merged.channel_type == "console" and merged.attempts == 0
    assert merged.reason is not None and "'first'" in merged.reason
    assert other.status is DeliveryStatus.DELIVERED, "another channel is not merged"
    (hook_message,) = fakes["hook"].sent
    assert hook_message.title == "first: capsule.create", "the first subscription's templates"
    (chat_message,) = fakes["chat"].sent
    assert chat_message.title == "second: capsule.create"
    registry = dispatcher.metrics.registry
    labels = {"subscription": "second", "state": "merged"}
    assert registry.get_sample_value("eventbus_deliveries_routed_total", labels) == 1


async def test_a_filtered_out_subscription_does_not_take_the_channel(build: Build) -> None:
    dispatcher, fakes = build(
        subscription("pager", ("hook",), min_severity="critical"),
        subscription("everything", ("hook",)),
    )
    stream_entry, event_id = entry()
    settlement = await dispatcher.send(await routed(dispatcher, stream_entry))
    (record,) = settlement.records
    assert record.id == delivery_id(event_id, "everything", "hook")
    assert record.status is DeliveryStatus.DELIVERED
    assert len(fakes["hook"].sent) == 1
    registry = dispatcher.metrics.registry
    labels = {"subscription": "pager", "reason": "severity"}
    assert registry.get_sample_value("eventbus_events_filtered_total", labels) == 1


def test_filtered_events_are_counted_by_reason(build: Build) -> None:
    dispatcher, _ = build(
        subscription("eu", ("hook",), where={"metadata.region": "eu-west"}),
        subscription("errors", ("chat",), min_severity="error"),
    )
    for region in ("eu-west", "us-east", "us-west"):
        work = dispatcher.entry_work(entry(metadata={"region": region})[0])
        assert work.settlement.records == [], "filtered out: no record"
    registry = dispatcher.metrics.registry
    assert (
        registry.get_sample_value(
            "eventbus_events_filtered_total", {"subscription": "eu", "reason": "where"}
        )
        == 2
    )
    assert (
        registry.get_sample_value(
            "eventbus_events_filtered_total", {"subscription": "errors", "reason": "severity"}
        )
        == 3
    )


async def test_one_subscription_naming_a_channel_twice_is_not_merged(build: Build) -> None:
    dispatcher, _ = build(subscription("twice", ("hook", "hook")))
    work = await routed(dispatcher, entry()[0])
    assert [t.channel_name for t in work.targets] == ["hook"]
    assert work.settlement.records == []


# -- overlaps config check can see --------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        pytest.param("host.down", "host.down", True, id="same"),
        pytest.param("host.down", "host.up", False, id="different"),
        pytest.param("host.*", "host.down", True, id="glob-exact"),
        pytest.param("host.*", "*.down", True, id="two-globs"),
        pytest.param("host.*", "capsule.*", False, id="disjoint-globs"),
        pytest.param("*", "anything.at.all", True, id="star"),
        pytest.param("host.u?", "host.up", True, id="question"),
        pytest.param("host.u?", "host.upp", False, id="question-is-one"),
        pytest.param("a*b", "*c", False, id="ends-differ"),
        pytest.param("a*c", "ab*", True, id="abc"),
        pytest.param("a.*.c", "a.b.*", True, id="middle"),
    ],
)
def test_globs_overlap(first: str, second: str, overlap: bool) -> None:
    assert globs_overlap(first, second) is overlap
    assert globs_overlap(second, first) is overlap


def spec(name: str, team: str = "*", events: tuple[str, ...] = ("*",), **kw: Any) -> Any:
    return SubscriptionSpec(
        name=name, team=team, events=list(events), channels=kw.pop("channels", ["hook"]), **kw
    )


@pytest.mark.parametrize(
    ("first", "second", "seen"),
    [
        pytest.param(spec("a"), spec("b"), True, id="both-everything"),
        pytest.param(spec("a", "team-1"), spec("b", "team-2"), False, id="other-teams"),
        pytest.param(spec("a", "team-1"), spec("b"), True, id="team-and-star"),
        pytest.param(spec("a", channels=["chat"]), spec("b"), False, id="other-channels"),
        pytest.param(
            spec("a", events=("host.*",)), spec("b", events=("capsule.*",)), False, id="types"
        ),
        pytest.param(
            spec("a", outcomes=["error"]), spec("b", outcomes=["success"]), False, id="outcomes"
        ),
        pytest.param(spec("a", outcomes=["error"]), spec("b"), True, id="outcome-and-any"),
        pytest.param(
            spec("a", min_severity="error"), spec("b", severities=["info"]), False, id="severity"
        ),
        pytest.param(
            spec("a", min_severity="error"), spec("b", severities=["critical"]), True, id="sev-ok"
        ),
        pytest.param(spec("a", enabled=False), spec("b"), False, id="disabled"),
    ],
)
def test_overlaps(first: SubscriptionSpec, second: SubscriptionSpec, seen: bool) -> None:
    found = overlaps([first, second])
    assert bool(found) is seen
    if seen:
        (overlap,) = found
        assert (overlap.channel, overlap.delivers, overlap.merged) == ("hook", "a", "b")


def test_overlaps_are_in_file_order_and_flag_where_filters() -> None:
    subs = [
        spec("team", "team-1"),
        spec("global-1"),
        spec("global-2", where={"metadata.region": "eu"}),
        spec("other-team", "team-2"),
    ]
    found = {(o.delivers, o.merged): o.filtered for o in overlaps(subs)}
    assert found == {
        ("team", "global-1"): False,
        ("team", "global-2"): True,
        ("global-1", "global-2"): True,
        ("global-1", "other-team"): False,
        ("global-2", "other-team"): True,
    }


async def test_a_templated_alert_notice_renders_with_its_alert(build: Build) -> None:
    # Dispatch hands the alert to render() itself: a subscription's template
    # sees {{ alert }} (a notice set on the message afterwards came too late
    # for templates, which render at once).
    from consumers.work import Target

    from .channels.support import make_alert

    dispatcher, fakes = build(
        subscription("pager", ("hook",), body_template="{{ alert.transition }} x{{ alert.count }}")
    )
    work = dispatcher.entry_work(entry()[0])
    [target] = work.targets
    work.targets = [
        Target(
            target.subscription,
            target.channel_name,
            target.id,
            0,
            target.created_at,
            alert=make_alert("resolved"),
        )
    ]
    await dispatcher.send(work)
    (message,) = fakes["hook"].sent
    assert message.body == "resolved x41"
    assert message.title.startswith("RESOLVED: ")
    assert message.alert is not None and message.alert.transition == "resolved"
