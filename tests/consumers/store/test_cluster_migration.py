"""The layout migration on a real Redis Cluster: nothing to move, only to check."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from consumers.store.migration import LAYOUT_VERSION, fold_legacy_stream, migrate_layout
from eventbus.errors import BrokerError
from eventbus.keys import Keys, LegacyKeys

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(cluster_url: str) -> str:
    return cluster_url


async def test_a_clean_cluster_is_marked_done(redis: aioredis.Redis, prefix: str) -> None:
    first = await migrate_layout(redis, prefix)
    assert not first.already_done and first.moved == 0
    assert (await redis.get(Keys(prefix).layout)).decode() == str(LAYOUT_VERSION)
    again = await migrate_layout(redis, prefix)
    assert again.already_done


@pytest.mark.parametrize("old", ["events", "delivery"], ids=["fixed-key", "per-delivery-key"])
async def test_old_keys_on_a_cluster_are_refused_by_name(
    redis: aioredis.Redis, prefix: str, old: str
) -> None:
    legacy = LegacyKeys(prefix)
    name = legacy.events if old == "events" else legacy.delivery_pattern.replace("*", "abc")
    if old == "events":
        await redis.xadd(name, {"payload": "{}"})
    else:
        await redis.set(name, "{}", ex=60)
    with pytest.raises(BrokerError, match="old untagged layout") as caught:
        await migrate_layout(redis, prefix, force=True)
    assert name in str(caught.value), "the message names a key it found"
    assert "eventbus migrate" in str(caught.value), "and says what to do"
    assert await redis.get(Keys(prefix).layout) is None, "not marked done"


async def test_an_old_publisher_stream_on_a_cluster_is_a_clear_error(
    redis: aioredis.Redis, prefix: str
) -> None:
    assert await fold_legacy_stream(redis, prefix, "delivery") == 0, "none: one EXISTS"
    await redis.xadd(LegacyKeys(prefix).events, {"payload": "{}"})
    with pytest.raises(BrokerError, match="Upgrade that publisher"):
        await fold_legacy_stream(redis, prefix, "delivery")
