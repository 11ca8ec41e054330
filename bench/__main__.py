"""``python -m bench [--quick] [--only NAME ...]``: run, print, write results."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from . import BENCHMARKS, consume, latency, match, memory, publish, rabbitmq, scaling, webhook
from .common import Result, progress, quiet_logging
from .report import RESULTS, machine, render_markdown, write


@dataclass(frozen=True)
class Sizes:
    consume_entries: int
    webhook_entries: int
    webhook_seconds: float
    latency_rate: float
    latency_seconds: float
    memory_entries: int
    publish_events: int
    rounds: int
    match_events: int = 20_000
    # RabbitMQ's quorum queue confirms 400-1,000/s here: 1,500 keep it under a minute.
    rabbitmq_events: int = 1_500


# Issue 19's sizes: latency at 2,000 events/s, RSS over a 1,000,000-entry drain.
FULL = Sizes(20_000, 2_000, 2.5, 2_000.0, 15.0, 1_000_000, 20_000, 3)
QUICK = Sizes(
    2_000, 600, 1.0, 2_000.0, 3.0, 20_000, 5_000, 3, match_events=5_000, rabbitmq_events=1_000
)
# For the smoke tests: every code path, a few hundred events.
TINY = Sizes(200, 100, 0.2, 200.0, 0.6, 200, 500, 1, match_events=200, rabbitmq_events=100)


def plan(sizes: Sizes) -> dict[str, Callable[[], Awaitable[Result]]]:
    return {
        "publish": lambda: publish.run(sizes.publish_events, sizes.rounds),
        "consume": lambda: consume.run(sizes.consume_entries, sizes.rounds),
        "webhook": lambda: webhook.run(sizes.webhook_entries, sizes.webhook_seconds, sizes.rounds),
        "latency": lambda: latency.run(sizes.latency_rate, sizes.latency_seconds, sizes.rounds),
        "memory": lambda: memory.run(sizes.memory_entries),
        "match": lambda: match.run(sizes.match_events, sizes.rounds),
        "rabbitmq": lambda: rabbitmq.run(sizes.rabbitmq_events, sizes.rounds),
        "scaling": lambda: scaling.run(sizes.consume_entries),
    }


async def main(names: list[str], sizes: Sizes, mode: str) -> int:
    info = machine()
    progress(
        f"{mode} run of {', '.join(names)} on {info['nproc']} CPUs, Python {info['python']}, "
        f"Redis {info['redis']}"
    )
    steps = plan(sizes)
    for name in names:
        progress(f"== {name}")
        start = time.perf_counter()
        result = await steps[name]()
        result.seconds = time.perf_counter() - start
        path = write(result, info, mode)
        summary = ", ".join(f"{k} = {v:g}" for k, v in result.ratios.items())
        met = "".join(
            f" ({t['metric']}: target {'met' if t['met'] else 'MISSED'})" for t in result.targets
        )
        progress(f"== {name}: {summary}{met} [{result.seconds:.0f} s] -> {path}")
    text = render_markdown(BENCHMARKS)
    (RESULTS / "latest.md").write_text(text)
    print(text)
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 2 minutes)")
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="worker log level; logs are rendered as JSON to /dev/null (default info, as deployed)",
    )
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="run on uvloop's event loop (pip install uvloop): to see whether the ratios move",
    )
    args = parser.parse_args(argv)
    quiet_logging(args.log_level)
    names = [n for n in BENCHMARKS if not args.only or n in args.only]
    sizes, mode = (QUICK, "quick") if args.quick else (FULL, "full")
    if args.uvloop:
        mode += "+uvloop"
        return _on_uvloop(main(names, sizes, mode))
    return asyncio.run(main(names, sizes, mode))


def _on_uvloop(work: Coroutine[Any, Any, int]) -> int:
    """Run ``work`` on uvloop; a clear error when it is not installed."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        work.close()
        print("--uvloop: uvloop is not installed; pip install uvloop", file=sys.stderr)
        return 2
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(work)


if __name__ == "__main__":
    sys.exit(cli())
