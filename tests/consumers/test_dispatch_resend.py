"""What dispatch does for resent and replayed retry jobs (consumers.resend, consumers.replay)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from consumers.channels.base import OutcomeClass, SendResult
from consumers.dispatch import Dispatcher
from consumers.store import RetryJob
from consumers.store.records import RESEND, Attempt, DeliveryStatus
from eventbus.settings import Settings

from .fakes import FakeChannel, channel_spec, event, subscription

LIMITED = SendResult(OutcomeClass.RATE_LIMITED, retry_after=5.0)
REFUSED = SendResult(OutcomeClass.PERMANENT, status=400, error="bad request")


@pytest.fixture
def build(make_settings: Callable[..., Settings]) -> Callable[[FakeChannel], Dispatcher]:
    def make(channel: FakeChannel) -> Dispatcher:
        settings = make_settings(channels=[channel_spec("fake")], subscriptions=[subscription()])
        return Dispatcher(settings, {"fake": channel})

    return make


def job(*history: Attempt, replay_of: str | None = None) -> RetryJob:
    old = time.time() - 30 * 86400  # first tried a month ago: patience long gone
    payload = event().to_json().encode()
    return RetryJob("msg_r", payload, "all", "fake", 8, old, history, replay_of)


@pytest.mark.parametrize(
    ("history", "status"),
    [
        pytest.param((), DeliveryStatus.FAILED, id="no-resend-gives-up"),
        pytest.param(
            (Attempt(8, time.time(), 0.0, RESEND),), DeliveryStatus.RETRYING, id="resent-waits"
        ),
    ],
)
async def test_rate_limit_patience_counts_from_the_latest_resend(
    build: Callable[[FakeChannel], Dispatcher],
    history: tuple[Attempt, ...],
    status: DeliveryStatus,
) -> None:
    dispatcher = build(FakeChannel("fake", LIMITED))
    settled = await dispatcher.send(dispatcher.retry_work(job(*history)))
    (record,) = settled.records
    assert record.status is status
    assert bool(settled.retries) is (status is DeliveryStatus.RETRYING)


async def test_a_replay_keeps_its_id_and_a_failure_keeps_the_event(
    build: Callable[[FakeChannel], Dispatcher],
) -> None:
    channel = FakeChannel("fake", REFUSED)
    dispatcher = build(channel)
    work = dispatcher.retry_work(job(replay_of="msg_original"))
    settled = await dispatcher.send(work)
    (record,) = settled.records
    assert record.id == "msg_r" and record.replay_of == "msg_original"
    assert channel.sent[0].delivery_id == "msg_r", "sent as webhook-id"
    assert record.status is DeliveryStatus.FAILED and record.payload == work.payload.decode()
