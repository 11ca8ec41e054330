"""One worker path, alone, for a profiler: ``python -m bench.profile PATH [ENTRIES]``.

PATH is ``consume`` (no-op channel, ``drain()``), ``routing`` (the same with
the routing-on configuration) or ``webhook`` (signed deliveries to a local
sink, ``run()``). The stream is filled once and the path run twice (the
first warms up), logs as the bench renders them. Under py-spy::

    py-spy record -r 500 -f raw -o consume.raw -- python -m bench.profile consume 20000

The rates printed are under the profiler: only proportions mean anything.
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis

from eventbus.keys import Keys

from .common import REDIS_URL, delete_prefix, envelopes, fill_stream, new_prefix, quiet_logging
from .consume import worker_drain, worker_routing
from .sink import Sink
from .webhook import worker_webhook

__all__ = ["main"]

PATHS = ("consume", "routing", "webhook")


async def main(path: str, total: int) -> None:
    quiet_logging()
    prefix = new_prefix(f"profile-{path}")
    keys = Keys(prefix)
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        await fill_stream(redis, keys.events, envelopes(total))
        with Sink() as sink:
            for turn in ("warm-up", "profiled"):
                if path == "webhook":
                    rate = await worker_webhook(sink.url, prefix, f"g-{turn}", total)
                else:
                    measure = worker_routing if path == "routing" else worker_drain
                    rate = await measure(prefix, f"g-{turn}", total)
                await delete_prefix(redis, prefix, keep=[keys.events])
                print(f"{path} {turn}: {rate:,.0f}/s", file=sys.stderr)
    finally:
        await delete_prefix(redis, prefix)
        await redis.aclose()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in PATHS:
        sys.exit(f"usage: python -m bench.profile {{{','.join(PATHS)}}} [ENTRIES]")
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 20_000))
