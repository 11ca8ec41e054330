"""Peak RSS of a worker draining a backlog, in a subprocess of its own.

The parent fills the stream, starts ``python -m bench.memory PREFIX N`` and
samples the child's ``VmRSS`` from /proc while it runs; the child runs the
production path (``Worker.run()``, ``max_in_flight`` at its default) until
its group has read and acked every entry, then reports its own ``VmHWM``
(peak RSS) and the RSS it had after start-up, before reading anything: that
idle RSS is the baseline the growth is measured from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

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

LIMIT_MB = 150.0


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


async def drain_in_subprocess(prefix: str, total: int) -> dict[str, float]:
    """Run the child on a filled stream; its report plus the parent's own RSS samples."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.memory",
        prefix,
        str(total),
        stdout=subprocess.PIPE,
        env=child_env(),
    )
    sampled = 0
    while proc.returncode is None:
        try:
            sampled = max(sampled, _status_kb(proc.pid, "VmRSS"))
        except (FileNotFoundError, ProcessLookupError):
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.25)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the memory child exited with {proc.returncode}")
    report: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    report["sampled_peak_kb"] = sampled
    return report


async def run(total: int) -> Result:
    prefix = new_prefix("memory")
    redis = aioredis.Redis.from_url(REDIS_URL)
    result = Result("memory", f"Peak RSS draining a {total:,}-entry backlog", {"entries": total})
    try:
        progress(f"memory: filling {prefix} with {total:,} entries")
        payloads = envelopes(total)
        await fill_stream(redis, Keys(prefix).events, payloads)
        del payloads
        progress("memory: draining in a subprocess (worker run(), default max_in_flight)")
        report = await drain_in_subprocess(prefix, total)
    finally:
        await delete_prefix(redis, prefix)
        await redis.aclose()
    mb = 1024.0
    peak = report["peak_kb"] / mb
    result.rows = [
        Row("worker peak RSS (VmHWM)", "MB", [peak]),
        Row("worker RSS after start-up, idle", "MB", [report["idle_kb"] / mb], "baseline"),
        Row("worker drain rate during the run", "events/s", [total / report["seconds"]], "info"),
    ]
    result.params.update(
        max_in_flight=report["max_in_flight"],
        batch_size=report["batch_size"],
        sampled_peak_mb=round(report["sampled_peak_kb"] / mb, 1),
        growth_mb=round(peak - report["idle_kb"] / mb, 1),
    )
    result.ratios["peak/idle"] = round(peak / (report["idle_kb"] / mb), 3)
    result.ratios["peak_mb"] = round(peak, 1)
    result.set_target("peak_mb", "<", LIMIT_MB, f"peak RSS < {LIMIT_MB:g} MB")
    result.notes.append(
        "Child process: Worker.run(), no-op channel, JSON logs to /dev/null, default "
        "consumer settings; VmHWM read by the child itself, VmRSS also sampled by the parent "
        "every 0.25 s (sampled_peak_mb)."
    )
    progress(f"memory: peak {peak:.1f} MB, idle {report['idle_kb'] / mb:.1f} MB")
    return result


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], int(sys.argv[2])))
