"""Publish-to-delivered latency at a fixed moderate rate, worker in ``run()`` mode.

Measured from just before ``Publisher.publish()`` to the moment the channel's
``send()`` is called (a no-op channel notes the time). The baseline is the
bare path: ``XADD`` at the same rate, read by an ``XREADGROUP BLOCK`` loop.
Publisher, worker and reader share one event loop (and so one core), as they
would not in production: the numbers are an upper bound.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from consumers.channels.base import Message
from consumers.worker import Worker
from eventbus.envelope import Event
from eventbus.keys import Keys
from publishers.client import Publisher

from .common import (
    REDIS_URL,
    NoopChannel,
    Result,
    Row,
    delete_prefix,
    envelopes,
    new_prefix,
    progress,
    worker_redis,
    worker_settings,
)

__all__ = ["bare_latencies", "percentile", "run", "worker_latencies"]


def percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(percent / 100 * len(ordered)))]


async def _paced(count: int, rate: float, publish: Callable[[int], Awaitable[None]]) -> None:
    """Call ``publish(number)`` at ``rate`` per second on a fixed schedule (no drift)."""
    start = time.perf_counter()
    for number in range(count):
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await publish(number)


async def worker_latencies(prefix: str, rate: float, seconds: float) -> list[float]:
    """Seconds from publish call to ``send()``, one per event."""
    count = int(rate * seconds)
    events = [Event.model_validate_json(p) for p in envelopes(count)]
    published: dict[str, float] = {}
    arrived: dict[str, float] = {}
    everything = asyncio.Event()

    def on_send(message: Message) -> None:
        arrived[message.event.id] = time.perf_counter()
        if len(arrived) >= count:
            everything.set()

    settings = worker_settings(prefix, name="bench")
    redis = worker_redis(settings.consumer.max_in_flight)
    worker = Worker(settings, redis=redis, channels={"noop": NoopChannel(on_send=on_send)})
    publisher = Publisher(settings)
    try:
        await worker.start()
        task = asyncio.create_task(worker.run())

        async def publish(number: int) -> None:
            published[events[number].id] = time.perf_counter()
            await publisher.publish(events[number])

        await _paced(count, rate, publish)
        await asyncio.wait_for(everything.wait(), 30)
        worker.stop()
        await task
    finally:
        await publisher.aclose()
        await delete_prefix(redis, prefix)
        await redis.aclose()
    return [arrived[i] - published[i] for i in published]


async def bare_latencies(prefix: str, rate: float, seconds: float) -> list[float]:
    """``XADD`` to an ``XREADGROUP COUNT 100 BLOCK 2000`` reader (with XACK)."""
    count = int(rate * seconds)
    payloads = envelopes(count)
    stream = Keys(prefix).events
    published: list[float] = []
    latencies: list[float] = []
    writer = aioredis.Redis.from_url(REDIS_URL)
    reader = aioredis.Redis.from_url(REDIS_URL)
    await writer.xgroup_create(stream, "bare", id="0", mkstream=True)

    async def read() -> None:
        while len(latencies) < count:
            reply = await reader.xreadgroup("bare", "bare", {stream: ">"}, count=100, block=2000)
            now = time.perf_counter()
            if not reply:
                continue
            rows = reply[0][1]
            for _entry_id, fields in rows:
                latencies.append(now - published[int(fields[b"n"])])
            await reader.xack(stream, "bare", *[entry_id for entry_id, _ in rows])

    async def publish(number: int) -> None:
        published.append(time.perf_counter())
        await writer.xadd(stream, {"payload": payloads[number], "n": number})

    try:
        reading = asyncio.create_task(read())
        await _paced(count, rate, publish)
        await asyncio.wait_for(reading, 30)
    finally:
        await delete_prefix(writer, prefix)
        await writer.aclose()
        await reader.aclose()
    return latencies


P99_LIMIT_MS = 5.0


async def run(rate: float, seconds: float, rounds: int) -> Result:
    """``rounds`` interleaved rounds of ``seconds / rounds`` each; percentiles per round."""
    result = Result(
        "latency",
        f"Publish-to-delivered latency at {rate:,g} events/s",
        {"rate": rate, "seconds": seconds, "rounds": rounds},
    )
    per_round = seconds / rounds
    samples: dict[str, list[list[float]]] = {"worker": [], "bare": []}
    for round_index in range(rounds):
        order = ("worker", "bare") if round_index % 2 == 0 else ("bare", "worker")
        for which in order:
            prefix = new_prefix("latency")
            measure = worker_latencies if which == "worker" else bare_latencies
            values = await measure(prefix, rate, per_round)
            samples[which].append(values)
            progress(
                f"  round {round_index + 1}/{rounds} {which}: "
                f"p50 {percentile(values, 50) * 1000:.2f} ms, "
                f"p99 {percentile(values, 99) * 1000:.2f} ms ({len(values)} events)"
            )

    def per_round_ms(which: str, percent: float) -> list[float]:
        return [percentile(values, percent) * 1000.0 for values in samples[which]]

    bare_p50, bare_p99 = "bare XADD -> XREADGROUP BLOCK p50", "bare XADD -> XREADGROUP BLOCK p99"
    result.rows = [
        Row("worker p50", "ms", per_round_ms("worker", 50)),
        Row("worker p99", "ms", per_round_ms("worker", 99)),
        Row("worker max", "ms", [max(v) * 1000.0 for v in samples["worker"]], "info"),
        Row(bare_p50, "ms", per_round_ms("bare", 50), "baseline"),
        Row(bare_p99, "ms", per_round_ms("bare", 99), "baseline"),
    ]
    pooled = [value for values in samples["worker"] for value in values]
    result.params["events"] = len(pooled)
    result.params["mean_ms"] = round(statistics.fmean(pooled) * 1000.0, 3)
    result.ratio("p50 worker/bare", "worker p50", bare_p50)
    result.ratio("p99 worker/bare", "worker p99", bare_p99)
    result.ratios["p99_ms"] = round(result.row("worker p99").median, 3)
    result.set_target("p99_ms", "<=", P99_LIMIT_MS, f"worker p99 <= {P99_LIMIT_MS:g} ms")
    result.notes.append(
        "Each round publishes at the rate on a fixed schedule (no drift) for seconds/rounds; "
        "percentiles are per round, the median of the rounds reported. Publisher, worker "
        "and reader share one event loop (one core), so the worker's figures include the "
        "publisher's own time: an upper bound."
    )
    return result
