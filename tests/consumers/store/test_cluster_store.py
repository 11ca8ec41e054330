"""The store's contract and the digest groups on a real local Redis Cluster.

The single-node cases, imported: ``client`` here is a cluster client from
``connect()``, so every script, MULTI/EXEC and pipeline they drive runs on
the cluster (one slot: the ``{prefix}`` tag). The old-layout migration case
is left out on purpose: a cluster refuses the old layout (see
``test_cluster_migration.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from eventbus.brokers.cluster import scan_keys
from eventbus.brokers.redis_streams import connect

from .test_contract import (  # noqa: F401  (cases run again here)
    keys,
    test_ack_goes_with_the_records,
    test_dead_letters_are_kept_and_redriven,
    test_records_are_written_and_read,
    test_retries_are_scheduled_claimed_and_done,
)
from .test_groups import (  # noqa: F401
    store,
    test_a_leased_digest_is_claimed_again_with_the_same_id_and_events,
    test_after_a_flush_the_next_digest_waits_group_interval,
    test_concurrent_claims_give_a_digest_to_one_worker,
    test_digest_keeps_the_first_max_events_and_counts_the_rest,
    test_first_event_opens_the_group_due_group_wait_later,
    test_flushed_group_is_idle_until_its_next_event,
    test_group_keys_share_the_hash_tag_and_expire,
    test_groups_are_independent,
    test_random_interleavings_lose_no_event_and_keep_the_timing,
    test_regrouping_the_same_event_is_idempotent,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(cluster_url: str, prefix: str) -> AsyncIterator[aioredis.Redis]:
    connection = connect(cluster_url)
    try:
        yield connection
    finally:
        for key in [key async for key in scan_keys(connection, "{" + prefix + "}*")]:
            await connection.delete(key)
        await connection.aclose()
