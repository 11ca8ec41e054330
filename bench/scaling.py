"""Scale-out: events/s with 1, 2 and 4 worker processes, single node and cluster.

One stream of ``total`` envelopes is filled per deployment; each measurement
reads all of it through a consumer group of its own (created at ``0``). The
worker processes (``python -m bench.scaling --child``: a ``Worker`` with a
no-op channel and one matching subscription, as ``consume``) start, connect
and report ready first; the clock runs from the moment they are all told to
go until the group has read and acknowledged every entry. Beside them, in
the same run and on the same deployment, the bare loop (``XREADGROUP COUNT
100`` + ``XACK``, one process) of ``consume``.

The cluster is a local 3-master, 3-replica Redis Cluster on loopback
(``tests/cluster.py``, ports 7361-7366) unless ``EVENTBUS_BENCH_CLUSTER_URL``
names one. On a 2-core machine, more processes than cores measure CPU
sharing, not scale-out: the notes say so.

The same rows again with ``broker.partitions: 4`` (``PARTITIONS``): the
envelopes (of 100 teams) go to their team's partition as a publisher would
route them, every worker reads every partition, and the clock stops when
the group has read and acknowledged every partition's entries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as aioredis

from consumers.worker import Worker
from eventbus.brokers.cluster import is_cluster, scan_keys
from eventbus.brokers.redis_streams import connect
from eventbus.keys import Keys, partition_of
from eventbus.settings import Settings

from .common import (
    REDIS_URL,
    NoopChannel,
    Result,
    Row,
    child_env,
    envelopes,
    fill_stream,
    new_prefix,
    progress,
    quiet_logging,
)
from .consume import bare_loop, group_caught_up

__all__ = ["run"]

PROCESSES = (1, 2, 4)
PARTITIONS = 4
TEAMS = 100  # in the partitioned rows: 10 teams put 10,000, 6,000, 4,000 and 0 in the 4
CLUSTER_PORT = 7361


def _settings(url: str, prefix: str, group: str, name: str, partitions: int = 1) -> Settings:
    return Settings(
        broker={"redis_url": url, "prefix": prefix, "partitions": partitions},
        consumer={"name": name, "group": group},
        channels=[{"name": "noop", "type": "console"}],
        subscriptions=[{"name": "all", "team": "*", "events": ["*"], "channels": ["noop"]}],
    )


async def _child(url: str, prefix: str, group: str, name: str, partitions: str = "1") -> None:
    """One worker process: start, say ready, run on "go", stop at end of stdin."""
    quiet_logging("info")
    settings = _settings(url, prefix, group, name, int(partitions))
    redis = connect(url, max_connections=96)
    channel = NoopChannel()
    worker = Worker(settings, redis=redis, channels={"noop": channel})
    loop = asyncio.get_running_loop()
    try:
        await worker.start()
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)  # "go"
        task = asyncio.create_task(worker.run())
        await loop.run_in_executor(None, sys.stdin.read)  # end of input: stop
        worker.stop()
        await task
        print(f"sent {channel.sent}", flush=True)
    finally:
        await redis.aclose()


async def _workers(url: str, prefix: str, group: str, totals: list[int], count: int) -> float:
    """``count`` worker processes drain ``totals`` (entries per partition): events/s."""
    total, parts = sum(totals), str(len(totals))
    child = (sys.executable, "-m", "bench.scaling", "--child", url, prefix, group)
    procs = [
        await asyncio.create_subprocess_exec(
            *child,
            f"w{i}",
            parts,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=child_env(),
        )
        for i in range(count)
    ]
    redis = connect(url)
    try:
        for proc in procs:
            assert proc.stdout is not None
            async with asyncio.timeout(60):
                line = await proc.stdout.readline()
            if line.strip() != b"ready":
                raise RuntimeError(f"a bench worker did not start: {line!r}")
        start = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
        async with asyncio.timeout(600):
            while not await _caught_up(redis, Keys(prefix), group, totals):  # noqa: ASYNC110  (other processes: polled as consume does)
                await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - start
        sent = 0
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            out, _ = await proc.communicate()
            sent += int(out.split()[-1])
        if sent < total:
            raise RuntimeError(f"{count} worker(s) delivered {sent} of {total} entries")
        return total / elapsed
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await redis.aclose()


async def _caught_up(redis: aioredis.Redis, keys: Keys, group: str, totals: list[int]) -> bool:
    for part, total in enumerate(totals):
        stream = keys.partition(part).events
        if not await group_caught_up(redis, stream, group, total):
            return False
    return True


async def _fill_partitions(redis: aioredis.Redis, keys: Keys, total: int) -> list[int]:
    """The envelopes in their team's partition (as the publisher routes them); counts."""
    split: list[list[str]] = [[] for _ in range(PARTITIONS)]
    for payload in envelopes(total, teams=TEAMS):
        split[partition_of(orjson.loads(payload)["team_id"], PARTITIONS)].append(payload)
    await redis.set(keys.partition_count, PARTITIONS)  # what a publisher would record
    for part, payloads in enumerate(split):
        await fill_stream(redis, keys.partition(part).events, payloads)
    return [len(payloads) for payloads in split]


async def _masters(redis: aioredis.Redis, keys: Keys) -> int:
    """How many masters hold the partitions' streams (0 on a single node)."""
    if not is_cluster(redis):
        return 0
    cluster: Any = redis
    nodes = {cluster.get_node_from_key(part.events).name for part in keys.partitions(PARTITIONS)}
    return len(nodes)


async def _partitioned(label: str, url: str, total: int, result: Result) -> None:
    prefix = new_prefix("scaling-p")
    keys = Keys(prefix)
    redis = connect(url)
    try:
        progress(f"scaling: filling {PARTITIONS} partitions on {label} ({prefix})")
        totals = await _fill_partitions(redis, keys, total)
        masters = await _masters(redis, keys)
        if masters:
            progress(f"  {label}: the {PARTITIONS} partitions are on {masters} master(s)")
            result.notes.append(f"cluster: the {PARTITIONS} partitions were on {masters} master(s)")
        for count in PROCESSES:
            for part in range(PARTITIONS):
                stream = keys.partition(part).events
                await redis.xgroup_create(stream, f"w{count}", id="0", mkstream=True)
        for count in PROCESSES:
            await _forget_deliveries(redis, prefix)
            rate = await _workers(url, prefix, f"w{count}", totals, count)
            progress(f"  {label} {PARTITIONS} partitions, {count} worker(s): {rate:,.0f} events/s")
            name = f"{count} worker(s), {PARTITIONS} partitions, {label}"
            result.rows.append(Row(name, "events/s", [rate]))
    finally:
        for pattern in (f"{{{prefix}}}*", f"{{{prefix}#*"):
            for key in [key async for key in scan_keys(redis, pattern)]:
                await redis.unlink(key)
        await redis.aclose()


async def _deployment(label: str, url: str, total: int, result: Result) -> None:
    prefix = new_prefix("scaling")
    stream = Keys(prefix).events
    redis = connect(url)
    try:
        progress(f"scaling: filling {label} ({prefix}) with {total:,} entries")
        await fill_stream(redis, stream, envelopes(total))
        bare = await bare_loop(redis, stream, "bare", total)
        progress(f"  {label} bare loop: {bare:,.0f} events/s")
        result.rows.append(Row(f"bare loop, {label}", "events/s", [bare], "baseline"))
        for count in PROCESSES:  # all at once: the workers' safe trim keeps what one has not read
            await redis.xgroup_create(stream, f"w{count}", id="0")
        for count in PROCESSES:
            group = f"w{count}"
            await _forget_deliveries(redis, prefix)
            rate = await _workers(url, prefix, group, [total], count)
            progress(f"  {label} {count} worker process(es): {rate:,.0f} events/s")
            result.rows.append(Row(f"{count} worker(s), {label}", "events/s", [rate]))
    finally:
        for key in [key async for key in scan_keys(redis, f"{{{prefix}}}*")]:
            await redis.unlink(key)
        await redis.aclose()


async def _forget_deliveries(redis: aioredis.Redis, prefix: str) -> None:
    # The previous run's records would make every event a duplicate (sent once).
    keep = {part.events for part in Keys(prefix).partitions(PARTITIONS)}
    keep.add(Keys(prefix).partition_count)
    for pattern in (f"{{{prefix}}}*", f"{{{prefix}#*"):
        async for key in scan_keys(redis, pattern):
            if key.decode() not in keep:
                await redis.unlink(key)


@contextlib.asynccontextmanager
async def _cluster_url() -> AsyncIterator[str]:
    given = os.environ.get("EVENTBUS_BENCH_CLUSTER_URL")
    if given:
        yield given
        return
    from tests.cluster import LocalCluster  # the test suite's launcher, not a product module

    cluster = LocalCluster(CLUSTER_PORT)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, cluster.start)
    try:
        yield cluster.url
    finally:
        await loop.run_in_executor(None, cluster.stop)


async def run(total: int, rounds: int = 1) -> Result:
    """``rounds`` is accepted for the harness; each figure is one drain of ``total``."""
    result = Result(
        "scaling",
        "Scale-out: worker processes, single node and cluster",
        {"entries": total, "processes": list(PROCESSES), "cpus": os.cpu_count()},
    )
    await _deployment("single node", REDIS_URL, total, result)
    await _partitioned("single node", REDIS_URL, total, result)
    async with _cluster_url() as url:
        await _deployment("cluster", url, total, result)
        await _partitioned("cluster", url, total, result)
    parts = f"{PARTITIONS} partitions"
    for label in ("single node", "cluster"):
        result.ratio(f"1w/bare {label}", f"1 worker(s), {label}", f"bare loop, {label}")
        result.ratio(f"4w/1w {label}", f"4 worker(s), {label}", f"1 worker(s), {label}")
        four, one = f"4 worker(s), {parts}, {label}", f"1 worker(s), {parts}, {label}"
        result.ratio(f"4w/1w {parts} {label}", four, one)
        result.ratio(f"{parts}/1 partition 4w {label}", four, f"4 worker(s), {label}")
    result.notes.append(
        f"{os.cpu_count()} CPUs: with more worker processes than cores, the figures show "
        "the cost of sharing them (and Redis shares them too), not how far workers scale out."
    )
    result.notes.append(
        "Unpartitioned, all eventbus keys share one hash tag, so on the cluster one master "
        "serves every command; with broker.partitions each partition's keys have their own "
        f"tag, and the {PARTITIONS} partitions' slots spread over the masters ({TEAMS} teams: "
        "the partitions hold 22-30 % of the entries each)."
    )
    return result


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling")
    parser.add_argument(
        "--child", nargs=5, metavar=("URL", "PREFIX", "GROUP", "NAME", "PARTITIONS")
    )
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(_child(*args.child))
        return 0
    parser.error("run it through python -m bench --only scaling")
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
