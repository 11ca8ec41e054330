"""The RabbitMQ backend against bare aio-pika loops doing the same work, in one run.

- publish: ``RabbitMQ.publish_many`` (500 per call) against a bare aio-pika
  publisher with confirms sending the same two messages per event (the
  persistent one to the events exchange, mandatory, and its live mirror).
- consume: the real worker path in RabbitMQ mode (``AmqpWorker.run`` with
  a no-op channel: consume, dispatch, commit the delivery records to Redis,
  ack), against a bare aio-pika consumer (same prefetch) that acks each
  message after one Redis write. Both drain the same backlog of a quorum
  queue; each clock stops at the last ack.

``python -m bench --only rabbitmq``; RabbitMQ at ``EVENTBUS_BENCH_AMQP_URL``
(default the local guest account), Redis as for every benchmark.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence

import aio_pika
import redis.asyncio as aioredis

from consumers.amqp_worker import AmqpWorker
from eventbus.brokers.rabbitmq import RabbitMQ, Topology
from eventbus.live import live_message

from .common import (
    REDIS_URL,
    NoopChannel,
    Result,
    Row,
    delete_prefix,
    envelopes,
    interleaved,
    new_prefix,
    worker_redis,
    worker_settings,
)

__all__ = ["run"]

AMQP_URL = os.environ.get("EVENTBUS_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
BATCH = 500
PREFETCH = 256
GROUP = "delivery"
OURS_PUBLISH = "RabbitMQ.publish_many (500 per call)"
BARE_PUBLISH = "bare aio-pika, confirms, events + live message, 500 in flight"
OURS_CONSUME = "AmqpWorker.run (no-op channel): consume + records + ack"
BARE_CONSUME = "bare aio-pika consumer, Redis write then ack per message"


async def bare_publish(
    channel: aio_pika.abc.AbstractChannel, topology: Topology, payloads: Sequence[str]
) -> float:
    events = await channel.get_exchange(topology.events)
    live = await channel.get_exchange(topology.live)

    async def one(payload: str) -> None:
        durable = aio_pika.Message(payload.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await events.publish(durable, "capsule.create", mandatory=True)
        mirror = aio_pika.Message(live_message(None, payload).encode())
        await live.publish(mirror, "capsule.create", mandatory=False)

    start = time.perf_counter()
    for first in range(0, len(payloads), BATCH):
        await asyncio.gather(*(one(p) for p in payloads[first : first + BATCH]))
    return len(payloads) / (time.perf_counter() - start)


async def ours_publish(broker: RabbitMQ, payloads: Sequence[str]) -> float:
    start = time.perf_counter()
    for first in range(0, len(payloads), BATCH):
        await broker.publish_many([("team-0001", p) for p in payloads[first : first + BATCH]])
    return len(payloads) / (time.perf_counter() - start)


async def ours_consume(broker: RabbitMQ, prefix: str, total: int) -> float:
    """The real worker path in RabbitMQ mode: consume, dispatch (no-op channel),
    commit the records to Redis, then ack (``AmqpWorker.run``).

    The clock stops once ``total`` events are committed and acked, as the bare
    consumer's stops at its ``total``-th ack: ``drain()`` would add its final
    wait for deliveries that might still be on their way (up to a second).
    """
    settings = worker_settings(prefix, name="bench", max_in_flight=PREFETCH)
    settings = settings.model_copy(
        update={"broker": settings.broker.model_copy(update={"kind": "rabbitmq"})}
    )
    redis = worker_redis(PREFETCH)
    channel = NoopChannel()
    worker = AmqpWorker(settings, redis=redis, broker=broker, channels={"noop": channel})
    try:
        await worker.start()
        start = time.perf_counter()
        task = asyncio.create_task(worker.run())
        while not task.done():  # polled as run_until_caught_up does for Redis
            if worker.processed >= total and not broker.holding(GROUP, worker.name):
                break
            await asyncio.sleep(0.002)
        rate = total / (time.perf_counter() - start)
        worker.stop()
        await task
        await broker.release(GROUP, worker.name)
    finally:
        await redis.aclose()
    if channel.sent != total:
        raise RuntimeError(f"the worker delivered {channel.sent} of {total} events")
    return rate


async def bare_consume(
    connection: aio_pika.abc.AbstractConnection,
    redis: aioredis.Redis,
    queue_name: str,
    prefix: str,
    total: int,
) -> float:
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.get_queue(queue_name, ensure=False)
    finished = asyncio.Event()
    count = 0

    async def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal count
        await redis.set(f"{prefix}:seen:{message.delivery_tag}", b"1")
        await message.ack()
        count += 1
        if count >= total:
            finished.set()

    start = time.perf_counter()
    tag = await queue.consume(handle)
    await asyncio.wait_for(finished.wait(), 120)
    rate = total / (time.perf_counter() - start)
    await queue.cancel(tag)
    await channel.close()
    return rate


async def run(total: int, rounds: int) -> Result:
    prefix = new_prefix("rabbitmq")
    topology = Topology(prefix)
    payloads = envelopes(total)
    redis = aioredis.Redis.from_url(REDIS_URL)
    broker = RabbitMQ(AMQP_URL, prefix, group=GROUP, prefetch=PREFETCH)
    result = Result(
        "rabbitmq",
        "RabbitMQ: publishing with confirms, consuming with a Redis write and ack",
        {"events": total, "rounds": rounds, "batch": BATCH, "prefetch": PREFETCH},
    )
    await broker.start()
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.get_queue(topology.queue(GROUP), ensure=False)

        async def publishing_ours() -> float:
            rate = await ours_publish(broker, payloads)
            await queue.purge()
            return rate

        async def publishing_bare() -> float:
            rate = await bare_publish(channel, topology, payloads)
            await queue.purge()
            return rate

        publish_values = await interleaved(
            {"ours": publishing_ours, "bare": publishing_bare}, rounds, "events/s"
        )

        async def consuming_ours() -> float:
            await delete_prefix(redis, prefix)  # the last round's records: not duplicates
            await bare_publish(channel, topology, payloads)
            return await ours_consume(broker, prefix, total)

        async def consuming_bare() -> float:
            await bare_publish(channel, topology, payloads)
            return await bare_consume(connection, redis, topology.queue(GROUP), prefix, total)

        consume_values = await interleaved(
            {"ours": consuming_ours, "bare": consuming_bare}, rounds, "events/s"
        )
        result.rows = [
            Row(OURS_PUBLISH, "events/s", publish_values["ours"]),
            Row(BARE_PUBLISH, "events/s", publish_values["bare"], "baseline"),
            Row(OURS_CONSUME, "events/s", consume_values["ours"]),
            Row(BARE_CONSUME, "events/s", consume_values["bare"], "baseline"),
        ]
        result.ratio("publish_many/bare", OURS_PUBLISH, BARE_PUBLISH)
        result.ratio("consume/bare", OURS_CONSUME, BARE_CONSUME)
        result.set_target("consume/bare", ">=", 0.7, "consume + record + ack at least 0.7 of bare")
        result.notes += [
            f"publish_many/bare = {result.ratios['publish_many/bare']:g} (target >= 0.7)",
            "The worker row is the daemon's own path (dispatch, delivery records in one "
            "commit script per batch, then acks); the bare consumer makes one Redis write "
            "per message and acks it, as the issue describes",
            "Absolute rates are low here: every confirm and ack goes through the quorum "
            "queue's log on a 2-core machine shared with Redis and the test sessions",
        ]
    finally:
        await broker.close()
        await connection.close()
        await _delete(topology)
        await delete_prefix(redis, prefix)
        await redis.aclose()
    return result


async def _delete(topology: Topology) -> None:
    """On a connection of its own: the benchmark's may be the reason it ended."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await topology.delete(await connection.channel(), [GROUP])
