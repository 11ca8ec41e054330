"""What every benchmark shares: envelopes, streams, key clean-up, rounds, results."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from consumers.channels.base import Message, OutcomeClass, SendResult
from eventbus.brokers.redis_streams import connect
from eventbus.settings import Settings

__all__ = [
    "REDIS_URL",
    "NoopChannel",
    "Result",
    "Row",
    "child_env",
    "delete_prefix",
    "envelopes",
    "fill_stream",
    "interleaved",
    "new_prefix",
    "progress",
    "quiet_logging",
    "routing_settings",
    "worker_redis",
    "worker_settings",
]

REDIS_URL = os.environ.get("EVENTBUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

# ~410 bytes once filled in, like the envelopes of performance.md.
_TEMPLATE = (
    '{{"id":"{id}","event":"{event}","outcome":"success",'
    '"timestamp":"2026-11-23T17:56:56.565Z","team_id":"team-{team:04d}",'
    '"actor":{{"type":"user","id":"user-12345","name":"Ada Lovelace"}},'
    '"resource":{{"id":"cap-{n:013d}","type":"capsule"}},'
    '"metadata":{{"region":"eu-west-1","image":"registry.example.com/app:1.42.0",'
    '"request_id":"req-0c4b8a7e9d2f4e1a","host":"node-17.cluster.local"}},"v":1}}'
)
_TYPES = ("capsule.create", "capsule.delete", "host.down", "backup.done")


def envelopes(count: int, *, teams: int = 10, offset: int = 0) -> list[str]:
    """``count`` valid, distinct envelopes of ~410 bytes (unique ULIDs, so unique deliveries).

    ``offset`` numbers them from there (resource ids), to make a large set in chunks.
    """
    from ulid import ULID

    return [
        _TEMPLATE.format(id=ULID(), event=_TYPES[i % len(_TYPES)], team=i % teams, n=i)
        for i in range(offset, offset + count)
    ]


def child_env() -> dict[str, str]:
    """The environment for ``python -m bench.*`` children, wherever we were started."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}


def new_prefix(name: str) -> str:
    return f"bench-{name}-{uuid.uuid4().hex[:10]}"


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def quiet_logging(level: str = "info") -> None:
    """Production logging (JSON, one line per delivery) written to /dev/null.

    The rendering cost stays in the measurement, as it is in production; only
    the terminal is spared.
    """
    from eventbus.logs import configure_logging
    from eventbus.settings import LoggingSettings

    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    configure_logging(LoggingSettings(level=level, format="json"), stream=devnull)  # type: ignore[arg-type]


async def fill_stream(redis: aioredis.Redis, stream: str, payloads: Sequence[str]) -> None:
    """XADD every payload (field ``payload``), pipelined 1000 at a time."""
    for start in range(0, len(payloads), 1000):
        pipe = redis.pipeline(transaction=False)
        for payload in payloads[start : start + 1000]:
            pipe.xadd(stream, {"payload": payload})
        await pipe.execute()


async def delete_prefix(redis: aioredis.Redis, prefix: str, *, keep: Sequence[str] = ()) -> int:
    """UNLINK every key under ``prefix:`` or ``{prefix}:`` (but ``keep``); returns how many."""
    kept = set(keep)
    batch: list[bytes] = []
    deleted = 0
    for pattern in (f"{prefix}:*", "{" + prefix + "}:*"):
        async for key in redis.scan_iter(match=pattern, count=5000):
            if key.decode() in kept:
                continue
            batch.append(key)
            if len(batch) >= 2000:
                deleted += await redis.unlink(*batch)
                batch.clear()
    if batch:
        deleted += await redis.unlink(*batch)
    return deleted


def worker_redis(max_in_flight: int) -> aioredis.Redis:
    """The daemon's Redis client (``connect()``), with room for ``max_in_flight``.

    The worker itself needs a handful of connections (group commit); the pool
    is sized so that older revisions, which held one per in-flight entry, can
    be measured with the same harness.
    """
    return connect(REDIS_URL, max_connections=max(64, max_in_flight + 32))


def worker_settings(prefix: str, channel: str = "noop", **consumer: Any) -> Settings:
    """One subscription sending every event of every team to ``channel``."""
    return Settings(
        broker={"redis_url": REDIS_URL, "prefix": prefix},
        consumer=consumer,
        channels=[{"name": channel, "type": "console"}],
        subscriptions=[{"name": "all", "team": "*", "events": ["*"], "channels": [channel]}],
    )


def routing_settings(prefix: str, **consumer: Any) -> Settings:
    """Routing on: every event through a ``where`` filter and a cooldown to ``noop``,
    and the events of one team in ten (``team-0000`` of the harness's ten) also
    folded by a ``group_by`` subscription (into ``digest``, whose digests are due
    only after the run).

    The cooldown's key (team, event, resource) is distinct per envelope, so
    every event is still delivered once: the cooldown is checked and written
    for each, and suppresses none.
    """
    return Settings(
        broker={"redis_url": REDIS_URL, "prefix": prefix},
        consumer=consumer,
        channels=[{"name": "noop", "type": "console"}, {"name": "digest", "type": "console"}],
        subscriptions=[
            {
                "name": "filtered",
                "team": "*",
                "events": ["*"],
                "where": {"metadata.region": ["eu-west-1", "eu-north-1"], "actor.type": "user"},
                "cooldown": "1h",
                "channels": ["noop"],
            },
            {
                "name": "grouped",
                "team": "team-0000",
                "events": ["*"],
                "group_by": ["team", "event"],
                "group_wait": "1h",
                "channels": ["digest"],
            },
        ],
    )


class NoopChannel:
    """Delivers instantly; optionally notes when each event reached ``send()``."""

    type = "noop"

    def __init__(self, name: str = "noop", on_send: Callable[[Message], None] | None = None):
        self.name = name
        self.sent = 0
        self._on_send = on_send
        self._result = SendResult(OutcomeClass.DELIVERED, status=200)

    def describe(self) -> str:
        return "no-op"

    async def send(self, message: Message) -> SendResult:
        self.sent += 1
        if self._on_send is not None:
            self._on_send(message)
        return self._result


async def interleaved(
    variants: dict[str, Callable[[], Awaitable[float]]], rounds: int, unit: str
) -> dict[str, list[float]]:
    """Run every variant once per round, rotating the order; values per variant."""
    names = list(variants)
    values: dict[str, list[float]] = {n: [] for n in names}
    for round_index in range(rounds):
        turn = round_index % len(names)
        order = names[turn:] + names[:turn]
        for name in order:
            value = await variants[name]()
            values[name].append(value)
            progress(f"  round {round_index + 1}/{rounds} {name}: {value:,.1f} {unit}")
    return values


@dataclass
class Row:
    label: str
    unit: str
    values: list[float]
    role: str = "measured"  # measured | baseline | info

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "role": self.role,
            "median": round(self.median, 3),
            "values": [round(v, 3) for v in self.values],
        }


@dataclass
class Result:
    """One benchmark's outcome; ``ratios`` are medians of the measured/baseline rows."""

    name: str
    title: str
    params: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    target: dict[str, Any] | None = None
    # every target of the issue this result checks (``target`` is the first)
    targets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def row(self, label: str) -> Row:
        return next(r for r in self.rows if r.label == label)

    def ratio(self, name: str, measured: str, baseline: str) -> float:
        value = self.row(measured).median / self.row(baseline).median
        self.ratios[name] = round(value, 3)
        return value

    def set_target(self, ratio: str, op: str, bound: float, text: str) -> None:
        """Add a target on ``ratio`` (``op``: ``>=``, ``<`` or ``<=``); the first is ``target``."""
        value = self.ratios[ratio]
        met = value >= bound if op == ">=" else (value <= bound if op == "<=" else value < bound)
        entry = {"metric": ratio, "op": op, "bound": bound, "met": met, "text": text}
        self.targets.append(entry)
        if self.target is None:
            self.target = entry

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "params": self.params,
            "rows": [r.to_dict() for r in self.rows],
            "ratios": self.ratios,
            "target": self.target,
            "targets": self.targets,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
