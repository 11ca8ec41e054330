"""Peak RSS of a worker draining a backlog, in a subprocess of its own.

The parent fills the stream, starts ``python -m bench.memory PREFIX N`` and
samples the child's ``VmRSS`` from /proc while it runs; the child runs the
production path (``Worker.run()``, ``max_in_flight`` at its default) until
its group has read and acked every entry, then reports its own ``VmHWM``
(peak RSS) and the RSS it had after start-up, before reading anything: that
idle RSS is the baseline the growth is measured from. "Flat" is read from the
parent's samples over the drain: the least-squares slope, and how much higher
the second half's peak is than the first half's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from eventbus.keys import Keys

from .common import (
    REDIS_URL,
    NoopChannel,
    Result,
    Row,
    child_env,
    delete_prefix,
    envelopes,
    fill_stream,
    new_prefix,
    progress,
    quiet_logging,
    worker_redis,
    worker_settings,
)

__all__ = ["drain_in_subprocess", "run"]

LIMIT_MB = 100.0
# "Flat": the second half of the drain peaks at most 5 % above the first half.
FLAT_RATIO = 1.05
SAMPLE_SECONDS = 0.25
FILL_CHUNK = 50_000


def _status_kb(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def _child(prefix: str, total: int) -> None:
    from consumers.worker import Worker

    from .consume import run_until_caught_up

    quiet_logging()
    settings = worker_settings(prefix, name="bench")
    redis = worker_redis(settings.consumer.max_in_flight)
    worker = Worker(settings, redis=redis, channels={"noop": NoopChannel()})
    await worker.start()
    idle = _status_kb("self", "VmRSS")
    print(json.dumps({"ready": idle}), flush=True)  # the parent's samples start here
    start = time.perf_counter()
    await run_until_caught_up(worker, Keys(prefix).events, settings.consumer.group, total, poll=0.2)
    elapsed = time.perf_counter() - start
    await redis.aclose()
    report = {
        "idle_kb": idle,
        "peak_kb": _status_kb("self", "VmHWM"),
        "seconds": elapsed,
        "max_in_flight": settings.consumer.max_in_flight,
        "batch_size": settings.consumer.batch_size,
    }
    print(json.dumps(report), flush=True)


async def drain_in_subprocess(prefix: str, total: int) -> dict[str, Any]:
    """Run the child on a filled stream; its report plus the parent's RSS samples.

    ``samples`` are (seconds since the child was ready, VmRSS kB), taken every
    ``SAMPLE_SECONDS`` from the child's "ready" line until it exits.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.memory",
        prefix,
        str(total),
        stdout=subprocess.PIPE,
        env=child_env(),
    )
    assert proc.stdout is not None
    ready = await asyncio.wait_for(proc.stdout.readline(), 60)
    if not ready:
        await proc.wait()
        raise RuntimeError(f"the memory child exited with {proc.returncode} before starting")
    start = time.perf_counter()
    samples: list[tuple[float, int]] = []
    while proc.returncode is None:
        try:
            samples.append((time.perf_counter() - start, _status_kb(proc.pid, "VmRSS")))
        except (FileNotFoundError, ProcessLookupError):
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), SAMPLE_SECONDS)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the memory child exited with {proc.returncode}")
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    report["samples"] = [(t, kb) for t, kb in samples if kb]
    return report


def flatness(samples: list[tuple[float, int]], seconds: float) -> tuple[float, float]:
    """(slope in MB per minute, second half's peak / the first half's) over the drain."""
    during = [(t, kb / 1024.0) for t, kb in samples if t <= seconds]
    if len(during) < 4:
        return 0.0, 1.0
    half = seconds / 2
    first = max(mb for t, mb in during if t <= half)
    second = max((mb for t, mb in during if t > half), default=first)
    # The slope leaves out the first tenth: buffers filling up to max_in_flight.
    steady = [(t, mb) for t, mb in during if t >= seconds / 10] or during
    mean_t = statistics.fmean(t for t, _ in steady)
    mean_mb = statistics.fmean(mb for _, mb in steady)
    spread = sum((t - mean_t) ** 2 for t, _ in steady)
    slope = sum((t - mean_t) * (mb - mean_mb) for t, mb in steady) / spread if spread else 0.0
    return slope * 60.0, second / first


async def _fill(redis: aioredis.Redis, stream: str, total: int) -> None:
    """``total`` envelopes, generated and added a chunk at a time (the parent stays small)."""
    for start in range(0, total, FILL_CHUNK):
        count = min(FILL_CHUNK, total - start)
        await fill_stream(redis, stream, envelopes(count, offset=start))


async def run(total: int) -> Result:
    prefix = new_prefix("memory")
    redis = aioredis.Redis.from_url(REDIS_URL)
    result = Result("memory", f"Peak RSS draining a {total:,}-entry backlog", {"entries": total})
    try:
        progress(f"memory: filling {prefix} with {total:,} entries")
        await _fill(redis, Keys(prefix).events, total)
        progress("memory: draining in a subprocess (worker run(), default max_in_flight)")
        report = await drain_in_subprocess(prefix, total)
    finally:
        await delete_prefix(redis, prefix)
        await redis.aclose()
    mb = 1024.0
    peak, idle = report["peak_kb"] / mb, report["idle_kb"] / mb
    slope, late = flatness(report["samples"], report["seconds"])
    result.rows = [
        Row("worker peak RSS (VmHWM)", "MB", [peak]),
        Row("worker RSS after start-up, idle", "MB", [idle], "baseline"),
        Row("worker drain rate during the run", "events/s", [total / report["seconds"]], "info"),
    ]
    result.params.update(
        max_in_flight=report["max_in_flight"],
        batch_size=report["batch_size"],
        samples=len(report["samples"]),
        sampled_peak_mb=round(max((kb for _, kb in report["samples"]), default=0) / mb, 1),
        growth_mb=round(peak - idle, 1),
        slope_mb_per_min=round(slope, 2),
    )
    result.ratios["peak/idle"] = round(peak / idle, 3)
    result.ratios["peak_mb"] = round(peak, 1)
    result.ratios["late/early peak"] = round(late, 3)
    result.set_target("peak_mb", "<", LIMIT_MB, f"peak RSS < {LIMIT_MB:g} MB")
    result.set_target(
        "late/early peak",
        "<=",
        FLAT_RATIO,
        "flat: the drain's second half peaks <= 5 % above the first",
    )
    result.notes.append(
        "Child process: Worker.run(), no-op channel, JSON logs to /dev/null, default "
        "consumer settings; VmHWM read by the child itself. The parent samples the child's "
        f"VmRSS every {SAMPLE_SECONDS:g} s from the end of its start-up to its exit: "
        "slope_mb_per_min is the least-squares slope over the drain (its first tenth, the "
        "warm-up, left out), late/early peak the second half's peak RSS over the first "
        "half's (a leak raises both)."
    )
    progress(f"memory: peak {peak:.1f} MB, idle {idle:.1f} MB, slope {slope:.2f} MB/min")
    return result


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], int(sys.argv[2])))
