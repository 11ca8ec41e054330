"""The pipeline's intake: a read batch is in flight at once, decoded and screened meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from consumers.metrics import Metrics
from consumers.pipeline import Pipeline
from consumers.store import Settlement
from eventbus.brokers.redis_streams import StreamEntry


@dataclass
class _Work:
    settlement: Settlement
    targets: list[Any] = field(default_factory=list)


class _Breaker:
    waiting = False

    async def flush_due(self, *, last: bool) -> list[tuple[str, str]]:
        return []


class _Router:
    async def decide(self, works: Sequence[_Work], now: float) -> None:
        return None


class _Dispatcher:
    def __init__(self) -> None:
        self.breaker = _Breaker()
        self.router = _Router()

    def entry_work(self, entry: StreamEntry) -> _Work:
        if entry.fields.get(b"payload") == b"bug":
            raise ValueError("a bug in dispatch")
        return _Work(Settlement(ack=entry.id))


class _Store:
    """Screening waits for ``gate``: the intake is caught mid-batch."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.screening = asyncio.Event()
        self.calls = 0

    async def current(self, ids: Sequence[str]) -> dict[str, Any]:
        self.calls += 1
        self.screening.set()
        await self.gate.wait()
        return {}


class _Committer:
    def __init__(self) -> None:
        self.acks: list[str | None] = []

    async def commit(self, settlements: Sequence[Settlement], now: float) -> None:
        self.acks += [settled.ack for settled in settlements]


def entries(*ids: str, payload: bytes = b"{}") -> list[StreamEntry]:
    return [StreamEntry(entry_id, {b"payload": payload}) for entry_id in ids]


def pipeline() -> tuple[Pipeline, _Store, _Committer]:
    store, committer = _Store(), _Committer()
    pipe = Pipeline(
        dispatcher=_Dispatcher(),  # type: ignore[arg-type]
        committer=committer,  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
        streams=None,  # type: ignore[arg-type]
        limit=10,
        consumer="c",
        metrics=Metrics(),
        clock=lambda: 0.0,
    )
    return pipe, store, committer


async def test_a_batch_is_held_before_it_is_screened_and_batches_settle_in_read_order() -> None:
    pipe, store, committer = pipeline()
    await pipe.take_entries(entries("1-0", "1-1"))
    await pipe.take_entries(entries("1-1", "1-2"))  # 1-1 is in flight already
    assert pipe.holds("1-0") and pipe.holds("1-2")
    assert pipe.in_flight == 3, "room() counts them while the intake screens"
    await asyncio.wait_for(store.screening.wait(), 5)
    assert committer.acks == []
    store.gate.set()
    await asyncio.wait_for(pipe.idle(), 5)
    assert committer.acks == ["1-0", "1-1", "1-2"]
    assert pipe.in_flight == 0


async def test_an_entry_dispatch_crashes_on_is_let_go_the_others_go_on() -> None:
    pipe, store, committer = pipeline()
    store.gate.set()
    await pipe.take_entries(entries("2-0", payload=b"bug") + entries("2-1"))
    await asyncio.wait_for(pipe.idle(), 5)
    assert committer.acks == ["2-1"]
    assert not pipe.holds("2-0"), "pending in the stream, reclaimed later"


async def test_a_forced_stop_lets_go_of_what_the_intake_had_not_started() -> None:
    pipe, store, committer = pipeline()
    await pipe.take_entries(entries("3-0"))
    await pipe.take_entries(entries("3-1"))
    await asyncio.wait_for(store.screening.wait(), 5)
    pipe.abandon()
    await asyncio.wait_for(pipe.idle(), 5)
    assert committer.acks == [], "nothing settled: every entry stays pending"
    assert not pipe.holds("3-0") and not pipe.holds("3-1")


async def test_finish_waits_for_the_intake_then_its_sends() -> None:
    pipe, store, committer = pipeline()
    await pipe.take_entries(entries("4-0"))
    await asyncio.wait_for(store.screening.wait(), 5)
    asyncio.get_running_loop().call_soon(store.gate.set)
    await pipe.finish(5.0)
    assert committer.acks == ["4-0"]


async def test_batches_read_while_the_intake_is_busy_are_screened_together() -> None:
    pipe, store, committer = pipeline()
    await pipe.take_entries(entries("5-0"))
    await asyncio.wait_for(store.screening.wait(), 5)
    await pipe.take_entries(entries("5-1"))
    await pipe.take_entries(entries("5-2"))
    store.gate.set()
    await asyncio.wait_for(pipe.idle(), 5)
    assert store.calls == 2, "one MGET for 5-0, one for 5-1 and 5-2 together"
    assert committer.acks == ["5-0", "5-1", "5-2"]
