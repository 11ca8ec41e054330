"""The stored form of a delivery record and of a retry's attempts."""

from __future__ import annotations

import orjson

from consumers.channels.base import OutcomeClass
from consumers.records import Attempt, DeliveryRecord, DeliveryStatus
from consumers.retries import RetryJob


def record() -> DeliveryRecord:
    r = DeliveryRecord(
        id="msg_1",
        event_id="01JABCDEFGHJKMNPQRSTVWXYZ0",
        event_type="capsule.create",
        team_id="team-1",
        subscription="ops",
        channel="hook",
        channel_type="webhook",
        status=DeliveryStatus.RETRYING,
        attempts=1,
        created_at=1_900_000_000.25,
        updated_at=1_900_000_001.5,
        next_attempt_at=1_900_000_006.5,
        last_status=503,
        last_error="HTTP 503",
    )
    r.history = [
        Attempt(1, 1_900_000_001.5, 0.012, OutcomeClass.RETRYABLE, 503, "HTTP 503", "busy é")
    ]
    return r


def test_stored_form_is_to_dict() -> None:
    r = record()
    assert orjson.loads(r.to_json()) == r.to_dict()
    assert list(orjson.loads(r.to_json())) == list(r.to_dict()), "same key order"
    assert orjson.loads(r.to_json())["history"][0]["outcome"] == "retryable"


def test_round_trip() -> None:
    r = record()
    back = DeliveryRecord.from_json(r.to_json())
    assert back == r
    assert back.status is DeliveryStatus.RETRYING


def test_retry_job_carries_the_attempts() -> None:
    r = record()
    job = RetryJob(
        r.id, b"{}", r.subscription, r.channel, r.attempts, r.created_at, tuple(r.history)
    )
    assert orjson.loads(job.history_json()) == [a.to_dict() for a in r.history]
