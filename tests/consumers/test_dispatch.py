"""The dispatcher's own deadline on a delivery: a hang is a timeout, a shutdown is not."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from consumers.channels.base import OutcomeClass
from consumers.dispatch import Dispatcher
from eventbus.settings import Settings

from .fakes import FakeChannel, channel_spec, subscription


@pytest.fixture
def dispatcher(make_settings: Callable[..., Settings]) -> Callable[[FakeChannel], Dispatcher]:
    def build(channel: FakeChannel) -> Dispatcher:
        settings = make_settings(
            channels=[channel_spec("fake", timeout="200ms")], subscriptions=[subscription()]
        )
        return Dispatcher(settings, {"fake": channel})

    return build


async def test_a_hung_channel_times_out(dispatcher: Callable[[FakeChannel], Dispatcher]) -> None:
    channel = FakeChannel("fake")
    channel.gate = asyncio.Event()  # never opened
    d = dispatcher(channel)
    result = await asyncio.wait_for(d._send(channel, 0.2, None), 5)
    assert result.outcome is OutcomeClass.RETRYABLE
    assert result.error == "timed out after 0.2s"
    assert 1.0 <= result.latency < 4.0, "the channel's timeout plus one second of grace"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0, "no cancellation left behind"


async def test_a_shutdown_cancel_is_not_a_timeout(
    dispatcher: Callable[[FakeChannel], Dispatcher],
) -> None:
    channel = FakeChannel("fake")
    channel.gate = asyncio.Event()
    d = dispatcher(channel)
    task = asyncio.create_task(d._send(channel, 30.0, None))
    await asyncio.wait_for(channel.started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_finished_send_leaves_no_timer(
    dispatcher: Callable[[FakeChannel], Dispatcher],
) -> None:
    channel = FakeChannel("fake")
    d = dispatcher(channel)
    loop = asyncio.get_running_loop()
    before = len(getattr(loop, "_scheduled", []))
    result = await d._send(channel, 0.05, None)
    assert result.outcome is OutcomeClass.DELIVERED
    await asyncio.sleep(0)  # cancelled timers are dropped lazily; none may fire
    scheduled = [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]
    assert len(scheduled) <= before


# -- screening against stored records (issue 12, item 10) -------------------------------

from consumers.dispatch import new_record  # noqa: E402
from consumers.store import DeliveryStatus  # noqa: E402
from eventbus.brokers.redis_streams import StreamEntry  # noqa: E402

from .fakes import event  # noqa: E402


@pytest.mark.parametrize(
    ("status", "sent", "retry"),
    [
        pytest.param(DeliveryStatus.DELIVERED, False, False, id="delivered-is-done"),
        pytest.param(DeliveryStatus.RETRYING, True, True, id="retrying-is-not"),
        pytest.param(DeliveryStatus.FAILED, True, False, id="failed-is-not"),
        pytest.param(DeliveryStatus.SKIPPED, True, False, id="skipped-is-not"),
    ],
)
def test_screen_drops_only_delivered_targets(
    dispatcher: Callable[[FakeChannel], Dispatcher],
    status: DeliveryStatus,
    sent: bool,
    retry: bool,
) -> None:
    d = dispatcher(FakeChannel("fake"))
    ev = event()
    work = d.entry_work(StreamEntry("5-0", {b"payload": ev.to_json().encode()}))
    stored = new_record(ev, "all", "fake", "console", status, attempts=3, created_at=7.0)
    d.screen(work, {stored.id: stored})
    assert bool(work.targets) is sent
    if sent:
        (target,) = work.targets
        assert (target.attempts, target.created_at, target.retry) == (3, 7.0, retry)
        assert work.settlement.duplicates == []
    else:
        (note,) = work.settlement.duplicates
        assert note.id == stored.id and note.history[-1].outcome == "duplicate"
        assert "5-0" in (note.history[-1].response or "")
