"""Benchmark harness: the daemon's hot paths beside bare baselines, in one run.

Run ``python -m bench`` (``make bench``); ``--quick`` for a smaller run,
``--only NAME`` for one benchmark. Each benchmark measures its baselines in
the same process tree and reports ratios, because absolute numbers on a
shared 2-core machine move by ±25 % from one run to the next. Results go to
``bench/results/<name>.json`` and ``bench/results/latest.md``.
"""

from __future__ import annotations

__all__ = ["BENCHMARKS"]

BENCHMARKS = (
    "consume",
    "webhook",
    "latency",
    "memory",
    "publish",
    "match",
    "rabbitmq",
    "scaling",
)
