"""``Publisher.publish_many`` against a bare redis-py pipeline doing the same commands.

Both publish batches of 500 (XADD to the stream + PUBLISH of the live
message). The publisher is given ready ``Event`` objects, as a service
would; it validates, encodes and runs the publish script per event. The bare
pipeline is given ready JSON strings: it measures transport only.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from eventbus.brokers.redis_streams import live_message
from eventbus.envelope import Event
from eventbus.keys import Keys
from publishers.client import Publisher

from .common import REDIS_URL, Result, Row, delete_prefix, envelopes, interleaved, new_prefix

__all__ = ["bare_pipeline", "publisher_batches", "run"]

BATCH = 500


async def bare_pipeline(redis: aioredis.Redis, keys: Keys, payloads: list[str]) -> float:
    start = time.perf_counter()
    for first in range(0, len(payloads), BATCH):
        pipe = redis.pipeline(transaction=False)
        for payload in payloads[first : first + BATCH]:
            pipe.xadd(keys.events, {"payload": payload})
            pipe.publish(keys.live("team-0001"), live_message("0-0", payload))
        await pipe.execute()
    return len(payloads) / (time.perf_counter() - start)


async def publisher_batches(publisher: Publisher, events: list[Event]) -> float:
    start = time.perf_counter()
    for first in range(0, len(events), BATCH):
        await publisher.publish_many(events[first : first + BATCH])
    return len(events) / (time.perf_counter() - start)


async def run(total: int, rounds: int) -> Result:
    prefix = new_prefix("publish")
    keys = Keys(prefix)
    payloads = envelopes(total)
    events = [Event.model_validate_json(p) for p in payloads]
    redis = aioredis.Redis.from_url(REDIS_URL)
    publisher = Publisher.from_url(REDIS_URL, prefix=prefix)
    result = Result(
        "publish",
        f"Publishing in batches of {BATCH}",
        {"events": total, "rounds": rounds, "batch": BATCH},
    )
    try:
        await publisher.publish_many(events[:10])  # connect and load the script

        async def bare() -> float:
            rate = await bare_pipeline(redis, keys, payloads)
            await redis.unlink(keys.events)
            return rate

        async def ours() -> float:
            rate = await publisher_batches(publisher, events)
            await redis.unlink(keys.events)
            return rate

        values = await interleaved({"publish_many": ours, "bare": bare}, rounds, "events/s")
        result.rows = [
            Row("Publisher.publish_many (500 per call)", "events/s", values["publish_many"]),
            Row(
                "bare redis-py pipeline XADD + PUBLISH, 500 per batch",
                "events/s",
                values["bare"],
                "baseline",
            ),
        ]
        result.ratio(
            "publish_many/bare",
            "Publisher.publish_many (500 per call)",
            "bare redis-py pipeline XADD + PUBLISH, 500 per batch",
        )
        result.set_target(
            "publish_many/bare", ">=", 1.0, "publish_many at least as fast as the bare pipeline"
        )
    finally:
        await publisher.aclose()
        await delete_prefix(redis, prefix)
        await redis.aclose()
    return result
