"""The benchmark harness at a tiny size: every path runs and reports what it should.

No timing assertions: these machines are noisy, and the numbers are the
harness's business, not the tests'.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import BENCHMARKS
from bench.__main__ import TINY, plan
from bench.common import Result, envelopes
from bench.report import machine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXPECTED_RATIOS = {
    "publish": {"publish_many/bare"},
    "consume": {"drain/multi", "routing/multi", "drain/bare", "validate/bare", "run/bare"},
    "webhook": {"worker/httpx", "worker/aiohttp", "channel/aiohttp"},
    "latency": {"p50 worker/bare", "p99 worker/bare", "p99_ms"},
    "memory": {"peak/idle", "peak_mb", "late/early peak"},
    "match": {"10000/10"},
    "rabbitmq": {"publish_many/bare", "consume/bare"},
    "scaling": {
        "1w/bare single node",
        "4w/1w single node",
        "1w/bare cluster",
        "4w/1w cluster",
        "4w/1w 4 partitions single node",
        "4w/1w 4 partitions cluster",
        "4 partitions/1 partition 4w single node",
        "4 partitions/1 partition 4w cluster",
    },
}


def test_envelopes_are_valid_and_about_410_bytes() -> None:
    from eventbus.envelope import decode

    payloads = envelopes(20)
    assert len({decode(p).id for p in payloads}) == 20
    assert all(400 <= len(p) <= 420 for p in payloads)


def test_machine_description(redis_url: str) -> None:
    info: dict[str, Any] = machine()
    assert {"nproc", "memory_gb", "python", "redis", "date"} <= set(info)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", BENCHMARKS)
async def test_benchmark_produces_results(
    name: str, redis_url: str, request: pytest.FixtureRequest
) -> None:
    if name == "rabbitmq":
        request.getfixturevalue("amqp_url")  # skipped (failed in CI) without RabbitMQ
    result = await plan(TINY)[name]()
    assert isinstance(result, Result)
    data = result.to_dict()
    assert {"name", "title", "params", "rows", "ratios", "target", "notes"} <= set(data)
    assert data["name"] == name
    assert set(data["ratios"]) == EXPECTED_RATIOS[name]
    assert all(value > 0 for value in data["ratios"].values())
    assert {r["role"] for r in data["rows"]} >= {"measured", "baseline"}
    for row in data["rows"]:
        assert row["values"] and row["median"] > 0
    if data["target"] is not None:
        assert isinstance(data["target"]["met"], bool)
