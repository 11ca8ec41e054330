"""Putting a delivery on the retry schedule by hand (resend, replay).

A resend or a replay is not sent by the command that asks for it: it becomes
a due retry (``consumers.store.retries``), and whichever worker claims it
sends it through its channel's rate limits and records the attempt as for
any retry. ``stage`` queues, on a MULTI/EXEC pipeline, what the commit
script writes for a retry scheduled after an attempt: the record (its state
now: ``retrying``, due at ``due``), the event's set of deliveries, the index,
the job hash and its place on the schedule. Replays add ``replay_of`` to the
job hash; later commits of the same job keep it (they set only their fields).
"""

from __future__ import annotations

from typing import Any

from eventbus.keys import Keys

from .records import DeliveryRecord
from .retries import RetryJob

__all__ = ["stage"]


def stage(
    pipe: Any, keys: Keys, ttl: int, record: DeliveryRecord, job: RetryJob, due: float
) -> None:
    """Queue on ``pipe`` (a redis-py pipeline) the writes that schedule ``job`` at ``due``."""
    pipe.set(keys.delivery(record.id), record.to_json(), ex=ttl)
    event_key = keys.event_deliveries(record.event_id)
    pipe.sadd(event_key, record.id)
    pipe.expire(event_key, ttl)
    pipe.zadd(keys.deliveries_index, {record.id: record.updated_at})
    fields: dict[str, Any] = {
        "payload": job.payload,
        "subscription": job.subscription,
        "channel": job.channel,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "history": job.history_json(),
    }
    if job.replay_of is not None:
        fields["replay_of"] = job.replay_of
    job_key = keys.retry_job(job.delivery_id)
    pipe.hset(job_key, mapping=fields)
    pipe.expire(job_key, ttl)
    pipe.zadd(keys.retries, {job.delivery_id: due})
