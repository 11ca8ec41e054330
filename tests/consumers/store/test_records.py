"""The stored form of a delivery record and of a retry's attempts."""

from __future__ import annotations

import orjson

from consumers.channels.base import OutcomeClass
from consumers.store.records import Attempt, DeliveryRecord, DeliveryStatus
from consumers.store.retries import RetryJob


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


# --- queries against the real Redis -------------------------------------------------

import pytest  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from consumers.store import Settlement  # noqa: E402
from consumers.store import records as records_module  # noqa: E402
from consumers.store.commit import Committer  # noqa: E402
from consumers.store.records import DeliveryStore  # noqa: E402
from eventbus.keys import Keys  # noqa: E402


def made(
    n: int, team: str, status: DeliveryStatus, at: float, channel: str = "hook"
) -> list[DeliveryRecord]:
    return [
        DeliveryRecord(
            id=f"msg_{team}_{status}_{channel}_{i}",
            event_id=f"ev_{team}_{i}",
            event_type="capsule.create",
            team_id=team,
            subscription="ops",
            channel=channel,
            channel_type="webhook",
            status=status,
            created_at=at,
            updated_at=at + i * 0.001,
        )
        for i in range(n)
    ]


async def store_with(
    redis: aioredis.Redis, prefix: str, *batches: list[DeliveryRecord]
) -> DeliveryStore:
    committer = Committer(redis, Keys(prefix), "g", 3600)
    for batch in batches:
        for start in range(0, len(batch), 500):
            await committer.commit([Settlement(records=batch[start : start + 500])], now=0)
    return DeliveryStore(redis, Keys(prefix), 3600)


@pytest.mark.integration
async def test_rare_matches_are_found_behind_many_newer_records(
    redis: aioredis.Redis, prefix: str
) -> None:
    old = made(3, "team-b", DeliveryStatus.FAILED, 1_000.0, channel="mail")
    new = made(4_000, "team-a", DeliveryStatus.DELIVERED, 2_000.0)
    store = await store_with(redis, prefix, old, new)

    failed = await store.query(status="failed", limit=10)
    assert sorted(r.id for r in failed) == sorted(r.id for r in old)
    assert [r.id for r in await store.query(teams={"team-b"}, limit=2)] == [
        old[2].id,
        old[1].id,
    ], "newest first, limit honoured"
    assert len(await store.query(channel="mail", limit=50)) == 3
    assert await store.query(status="failed", since=1_500.0) == [], "since bounds the walk"
    latest = await store.query(limit=5)
    assert [r.id for r in latest] == [r.id for r in reversed(new[-5:])]


@pytest.mark.integration
async def test_ties_at_a_page_edge_are_neither_lost_nor_repeated(
    redis: aioredis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records_module, "_QUERY_PAGE", 3)
    same = made(20, "team-c", DeliveryStatus.FAILED, 3_000.0)
    for r in same:
        r.updated_at = 3_000.0  # one score for all
    store = await store_with(redis, prefix, same)
    # A page (7) smaller than the run of ties (20): walked by offset within the score.
    found = await store.query(status="failed", limit=7)
    assert len(found) == len({r.id for r in found}) == 7
    found = await store.query(teams={"team-c"}, limit=20)
    assert sorted(r.id for r in found) == sorted(r.id for r in same)


@pytest.mark.integration
async def test_latest_per_channel_in_one_walk(redis: aioredis.Redis, prefix: str) -> None:
    store = await store_with(
        redis,
        prefix,
        made(3, "team-a", DeliveryStatus.FAILED, 1_000.0, channel="mail"),
        made(1_500, "team-a", DeliveryStatus.DELIVERED, 2_000.0, channel="hook"),
    )
    latest = await store.latest_per_channel(["mail", "hook", "idle"])
    assert set(latest) == {"mail", "hook"}, "a channel with no record has none"
    assert latest["mail"].id.endswith("_mail_2") and latest["hook"].id.endswith("_hook_1499")
    assert await store.latest_per_channel(["mail"], scan_limit=1_000) == {}, "bounded"


# --- duplicates (issue 12, item 10) ---------------------------------------------------

from consumers.store.records import DUPLICATE, note_duplicate  # noqa: E402


def test_duplicate_note_keeps_the_record_and_counts_no_attempt() -> None:
    delivered = record()
    delivered.status = DeliveryStatus.DELIVERED
    noted = note_duplicate(delivered, "17-1", 1_900_000_100.0)
    assert noted.status is DeliveryStatus.DELIVERED and noted.attempts == delivered.attempts
    assert [a.outcome for a in noted.history] == ["retryable", DUPLICATE]
    assert "17-1" in (noted.history[-1].response or "")
    assert noted.updated_at == 1_900_000_100.0
    assert len(delivered.history) == 1, "the stored record read is not changed"


def test_duplicate_notes_are_bounded_and_attempts_kept() -> None:
    noted = record()
    noted.status = DeliveryStatus.DELIVERED
    for number in range(50):
        noted = note_duplicate(noted, f"{number}-0", 1_900_000_100.0 + number)
    outcomes = [a.outcome for a in noted.history]
    assert outcomes[0] == "retryable", "attempts are never dropped"
    assert outcomes.count(DUPLICATE) == 20
    assert "49-0" in (noted.history[-1].response or "")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("stored", "written"),
    [
        pytest.param(DeliveryStatus.DELIVERED, True, id="over-delivered"),
        pytest.param(DeliveryStatus.RETRYING, False, id="not-over-retrying"),
        pytest.param(None, False, id="not-over-nothing"),
    ],
)
async def test_duplicate_note_is_written_only_over_a_delivered_record(
    redis: aioredis.Redis, prefix: str, stored: DeliveryStatus | None, written: bool
) -> None:
    committer = Committer(redis, Keys(prefix), "g", 3600)
    store = DeliveryStore(redis, Keys(prefix), 3600)
    base = record()
    base.status = DeliveryStatus.DELIVERED
    note = note_duplicate(base, "17-1", 1_900_000_100.0)
    if stored is not None:
        now = record()
        now.status = stored
        await committer.commit([Settlement(records=[now])], now=0)
    await committer.commit([Settlement(duplicates=[note])], now=0)
    found = await store.current([base.id, "msg_missing"])
    assert list(found) == ([] if stored is None else [base.id])
    if stored is not None:
        outcomes = [a.outcome for a in found[base.id].history]
        assert (outcomes[-1] == DUPLICATE) is written
        assert found[base.id].status is stored


def test_a_record_written_by_a_newer_version_still_reads() -> None:
    # Rolling upgrades: a worker reads records that a newer one wrote.
    record = DeliveryRecord(
        id="msg_1",
        event_id="e1",
        event_type="host.down",
        team_id="t",
        subscription="s",
        channel="c",
        channel_type="webhook",
        status=DeliveryStatus.FAILED,
    )
    newer = record.to_json()[:-1] + b',"field_of_the_future":{"a":1}}'
    assert DeliveryRecord.from_json(newer) == record
