"""The worker and the daemon on a real local Redis Cluster (3 masters + 3 replicas).

The cases are the single-node ones (imported from their modules, so they
stay one definition): overriding ``redis_url`` here points the ``redis``,
``make_settings`` and ``config`` fixtures at the cluster, and every client
the code builds comes from ``connect()`` with a ``redis+cluster://`` URL.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from eventbus.config import load_settings
from eventbus.keys import Keys

from .fakes import event
from .processes import joined, start_worker
from .sink import Sink
from .test_daemon_process import (  # noqa: F401  (fixtures and cases run again here)
    check_all_delivered,
    config,
    publish,
    rescue,
    sink,
    test_sigkill_mid_batch_then_reclaimed,
    test_sigterm_drains_in_flight_and_exits_zero,
)
from .test_worker import (  # noqa: F401
    setup,
    test_crash_before_commit_leaves_entry_pending_for_reclaim,
    test_dead_consumers_removed_only_without_pending,
    test_delivered_recorded_and_acked,
    test_duplicates_across_two_workers_are_delivered_at_least_once,
    test_garbage_entries_dead_lettered_good_ones_delivered,
    test_max_receives_goes_to_dead_letters,
    test_reclaimed_entry_resends_only_what_was_not_recorded_delivered,
    test_restart_drains_own_pending_first,
    test_retries_exhausted_fail,
    test_retry_claim_is_exclusive,
    test_retry_then_delivered_keeps_delivery_id,
    test_safe_trim_keeps_unacked_entries,
    test_two_workers_share_the_work_without_double_attempts,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(cluster_url: str) -> str:
    return cluster_url


@pytest.mark.slow
async def test_two_daemons_deliver_every_event_exactly_once(
    config: Callable[..., Path],  # noqa: F811  (the imported fixtures)
    sink: Sink,  # noqa: F811
    redis: aioredis.Redis,
) -> None:
    path = config(max_in_flight=16)
    events = [event(resource={"type": "capsule", "id": f"c{i}"}) for i in range(300)]
    procs = [await start_worker(path, name) for name in ("left", "right")]
    try:
        keys = Keys(load_settings(path).broker.prefix)
        await joined(redis, keys.events, "delivery", {"left", "right"})  # both take part
        await publish(path, redis, events)
        await sink.wait_for(len(events), 60)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        outputs = [(await asyncio.wait_for(proc.communicate(), 30))[0] for proc in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out.decode()[-2000:]
    sent = [
        [line for line in out.decode().splitlines() if '"delivery.sent"' in line] for out in outputs
    ]
    assert sum(map(len, sent)) == len(events), "each event sent once, by one of the two"
    assert len(sink.received) == len(events), "no duplicate without a kill"
    w = await rescue(path, redis)  # nothing left to reclaim; checks records and pending
    await check_all_delivered(w, events, sink)
