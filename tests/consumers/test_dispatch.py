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
