"""Consume + record + ack with a no-op channel, against bare redis-py loops.

One stream of ``total`` envelopes is filled once; every loop reads all of it
through a consumer group of its own (created at ``0``, destroyed after), so
each variant sees exactly the same entries. Records written by the worker are
deleted between rounds, so every round starts from the same state.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from consumers.worker import Worker
from eventbus.envelope import decode
from eventbus.keys import Keys

from .common import (
    REDIS_URL,
    NoopChannel,
    Result,
    Row,
    delete_prefix,
    envelopes,
    fill_stream,
    interleaved,
    new_prefix,
    progress,
    routing_settings,
    worker_redis,
    worker_settings,
)

__all__ = [
    "bare_loop",
    "multi_loop",
    "run",
    "validate_loop",
    "worker_drain",
    "worker_routing",
    "worker_run",
]

COUNT = 100


async def _group_loop(
    redis: aioredis.Redis,
    stream: str,
    group: str,
    total: int,
    settle: Callable[[list[tuple[bytes, dict[bytes, bytes]]]], Awaitable[None]],
) -> float:
    """Read ``total`` entries through a new group, ``COUNT 100`` at a time; events/s.

    ``settle`` gets each batch and must acknowledge it.
    """
    await redis.xgroup_create(stream, group, id="0")
    done = 0
    start = time.perf_counter()
    while done < total:
        reply: Any = await redis.xreadgroup(group, "bench", {stream: ">"}, count=COUNT)
        if not reply:
            break
        rows = reply[0][1]
        await settle(rows)
        done += len(rows)
    elapsed = time.perf_counter() - start
    await redis.xgroup_destroy(stream, group)
    return done / elapsed


async def bare_loop(redis: aioredis.Redis, stream: str, group: str, total: int) -> float:
    """``XREADGROUP COUNT 100`` + one ``XACK`` per batch, no decode: events/s."""

    async def settle(rows: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        await redis.xack(stream, group, *[entry_id for entry_id, _ in rows])

    return await _group_loop(redis, stream, group, total, settle)


async def validate_loop(redis: aioredis.Redis, stream: str, group: str, total: int) -> float:
    """The bare loop plus ``decode()`` (pydantic validation) of every entry, no writes.

    The ceiling for any loop that validates envelopes as the issue asks:
    no matching, delivering, recording or logging.
    """

    async def settle(rows: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for _entry_id, fields in rows:
            decode(fields[b"payload"])
        await redis.xack(stream, group, *[entry_id for entry_id, _ in rows])

    return await _group_loop(redis, stream, group, total, settle)


async def multi_loop(
    redis: aioredis.Redis, stream: str, group: str, total: int, prefix: str
) -> float:
    """Decode + one HSET per entry + XACK, in one MULTI per batch: events/s."""

    async def settle(rows: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        async with redis.pipeline(transaction=True) as pipe:
            for _entry_id, fields in rows:
                event = json.loads(fields[b"payload"])
                pipe.hset(
                    f"{prefix}:rec:{event['id']}",
                    mapping={"event": event["event"], "status": "delivered", "at": time.time()},
                )
            pipe.xack(stream, group, *[entry_id for entry_id, _ in rows])
            await pipe.execute()

    return await _group_loop(redis, stream, group, total, settle)


async def worker_drain(prefix: str, group: str, total: int) -> float:
    """The daemon's path in burst mode (``Worker.drain()``): events/s."""
    return await _worker(prefix, group, total, drain=True)


async def worker_run(prefix: str, group: str, total: int) -> float:
    """The daemon's long-running path (``Worker.run()``) until the group is caught up."""
    return await _worker(prefix, group, total, drain=False)


async def worker_routing(prefix: str, group: str, total: int) -> float:
    """``Worker.drain()`` with routing on (``routing_settings``): events/s."""
    return await _worker(prefix, group, total, drain=True, routing=True)


async def _worker(
    prefix: str, group: str, total: int, *, drain: bool, routing: bool = False
) -> float:
    make = routing_settings if routing else worker_settings
    settings = make(prefix, group=group, name="bench")
    redis = worker_redis(settings.consumer.max_in_flight)
    channel = NoopChannel()
    channels = {"noop": channel, "digest": NoopChannel("digest")} if routing else {"noop": channel}
    worker = Worker(settings, redis=redis, channels=channels)
    try:
        await worker.start()
        gc.freeze()  # as the daemon does once started
        start = time.perf_counter()
        if drain:
            await worker.drain()
        else:
            await run_until_caught_up(worker, Keys(prefix).events, group, total)
        elapsed = time.perf_counter() - start
        gc.unfreeze()
        if channel.sent != total:
            raise RuntimeError(f"worker delivered {channel.sent} of {total} entries")
        await redis.xgroup_destroy(Keys(prefix).events, group)
    finally:
        await redis.aclose()
    return total / elapsed


async def run_until_caught_up(
    worker: Worker, stream: str, group: str, total: int, poll: float = 0.02
) -> None:
    """``worker.run()`` until ``group`` has read and acked ``total`` entries, then stop it.

    Polls ``XINFO GROUPS`` on a connection of its own, so the worker's pool
    is left to the worker.
    """
    redis = aioredis.Redis.from_url(REDIS_URL)
    task = asyncio.create_task(worker.run())
    try:
        while not task.done():
            if await group_caught_up(redis, stream, group, total):
                break
            await asyncio.sleep(poll)
    finally:
        worker.stop()
        await task
        await redis.aclose()


async def group_caught_up(redis: aioredis.Redis, stream: str, group: str, total: int) -> bool:
    for info in await redis.xinfo_groups(stream):
        if info["name"].decode() == group:
            read = int(info.get("entries-read") or 0)
            return read >= total and int(info["pending"]) == 0
    return False


DRAIN = "worker drain() (no-op channel)"
ROUTING = "worker drain(), routing on (where, cooldown, group_by on 10 %)"
RUN = "worker run(), max_in_flight 256"
BARE = "bare XREADGROUP + XACK per batch"
MULTI = "bare decode + HSET + XACK, one MULTI per batch"
VALIDATE = "bare loop + envelope validation (decode()), no writes"


async def run(total: int, rounds: int, *, with_run_mode: bool = True) -> Result:
    prefix = new_prefix("consume")
    keys = Keys(prefix)
    redis = aioredis.Redis.from_url(REDIS_URL)
    result = Result(
        "consume",
        "Consume + match + record + ack, no-op channel",
        {"entries": total, "rounds": rounds, "count": COUNT, "envelope_bytes": 0},
    )
    try:
        payloads = envelopes(total)
        result.params["envelope_bytes"] = len(payloads[0])
        progress(f"consume: filling {prefix} with {total:,} entries")
        await fill_stream(redis, keys.events, payloads)
        del payloads
        serial = iter(range(10_000))

        def group() -> str:
            return f"g{next(serial)}"

        def cleaned(measure: Callable[[str, str, int], Awaitable[float]]) -> Variant:
            async def variant() -> float:
                rate = await measure(prefix, group(), total)
                await delete_prefix(redis, prefix, keep=[keys.events])
                return rate

            return variant

        async def bare() -> float:
            return await bare_loop(redis, keys.events, group(), total)

        async def validate() -> float:
            return await validate_loop(redis, keys.events, group(), total)

        async def multi() -> float:
            rate = await multi_loop(redis, keys.events, group(), total, f"{prefix}:bare")
            await delete_prefix(redis, prefix, keep=[keys.events])
            return rate

        variants: dict[str, Variant] = {
            BARE: bare,
            VALIDATE: validate,
            MULTI: multi,
            DRAIN: cleaned(worker_drain),
            ROUTING: cleaned(worker_routing),
        }
        if with_run_mode:
            variants[RUN] = cleaned(worker_run)
        values = await interleaved(variants, rounds, "events/s")
        _report(result, values)
    finally:
        await delete_prefix(redis, prefix)
        await redis.aclose()
    return result


Variant = Callable[[], Awaitable[float]]


def _report(result: Result, values: dict[str, list[float]]) -> None:
    roles = {DRAIN: "measured", ROUTING: "measured", RUN: "info", MULTI: "baseline"}
    result.rows = [
        Row(label, "events/s", values[label], roles.get(label, "info"))
        for label in (DRAIN, ROUTING, RUN, MULTI, BARE, VALIDATE)
        if label in values
    ]
    result.ratio("drain/multi", DRAIN, MULTI)
    result.ratio("routing/multi", ROUTING, MULTI)
    result.ratio("drain/bare", DRAIN, BARE)
    result.ratio("validate/bare", VALIDATE, BARE)
    if RUN in values:
        result.ratio("run/bare", RUN, BARE)
    result.set_target("drain/multi", ">=", 0.7, "no-op path >= 0.7 of decode + HSET + MULTI")
    result.set_target("routing/multi", ">=", 0.6, "routing on >= 0.6 of the same")
    result.notes += [
        "The baseline (issue 19) is the decode + HSET + XACK loop, one MULTI per batch: it "
        "decodes (json.loads) and writes one hash per entry, but validates, matches, logs "
        "and indexes nothing. Per entry the worker validates the envelope, matches "
        "subscriptions, calls the channel under its own deadline, counts metrics, logs "
        "(a successful delivery at debug: filtered out at the default level), and writes "
        "the record (attempts included) with its indexes; one Lua script call per group "
        "commit writes the records and the XACK.",
        "Routing on: every event passes a `where` filter (two paths) and a cooldown "
        "(keyed per resource, so it suppresses none but is read and written for every "
        "event), and the events of one team in ten are also folded by a `group_by` "
        "subscription (grouped records, digests due after the run).",
        "The bare XREADGROUP + XACK loop neither decodes nor writes: validate/bare is the "
        "ceiling of any loop validating envelopes with the product's pydantic model.",
        "Worker Redis client: eventbus connect() (commands packed by hiredis, a bounded "
        "pool that waits for a free connection). The garbage collector's start-up heap is "
        "frozen during the worker rounds, as the daemon does once started.",
    ]
