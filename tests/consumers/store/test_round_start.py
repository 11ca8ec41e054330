"""``round_start``: the patience for being rate limited counts from the latest resend."""

from __future__ import annotations

from consumers.store.records import (
    DUPLICATE,
    RESEND,
    Attempt,
    DeliveryRecord,
    DeliveryStatus,
    round_start,
)


def record(*history: Attempt) -> DeliveryRecord:
    return DeliveryRecord(
        "msg_1",
        "e1",
        "capsule.create",
        "team-1",
        "all",
        "hook",
        "webhook",
        DeliveryStatus.RETRYING,
        created_at=10.0,
        history=list(history),
    )


def test_the_first_try_without_a_resend() -> None:
    assert round_start(record(Attempt(1, 20.0, 0.1, "retryable"))) == 10.0
    assert round_start(record(Attempt(1, 30.0, 0.0, DUPLICATE))) == 10.0


def test_the_latest_resend() -> None:
    items = [Attempt(1, 20.0, 0.1, "permanent"), Attempt(1, 50.0, 0.0, RESEND)]
    items += [Attempt(2, 51.0, 0.1, "permanent"), Attempt(2, 90.0, 0.0, RESEND)]
    assert round_start(record(*items)) == 90.0
