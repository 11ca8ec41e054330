"""The key schema: one hash tag on every key, Pub/Sub channels untagged."""

from __future__ import annotations

import pytest

from eventbus.keys import Keys, LegacyKeys


def every_key(keys: Keys) -> list[str]:
    return [
        keys.events,
        keys.dlq,
        keys.delivery("msg_1"),
        keys.deliveries_index,
        keys.event_deliveries("ev1"),
        keys.retries,
        keys.retry_job("msg_1"),
        keys.channel_state,
        keys.layout,
        keys.migration_lock,
    ]


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes: the text between the first { and the next }."""
    start = key.index("{")
    return key[start + 1 : key.index("}", start + 1)]


@pytest.mark.parametrize("prefix", ["eventbus", "team-a:prod", "x"])
def test_every_key_shares_one_hash_tag(prefix: str) -> None:
    keys = Keys(prefix)
    assert {hash_tag(key) for key in every_key(keys)} == {prefix}
    assert all(key.startswith("{" + prefix + "}:") for key in every_key(keys))


def test_live_channels_keep_the_untagged_names() -> None:
    keys = Keys("eventbus")
    assert keys.live("team-1") == "eventbus:live:team-1"
    assert keys.live_pattern == "eventbus:live:*"


def test_legacy_names_and_their_new_names() -> None:
    legacy, keys = LegacyKeys("eventbus"), Keys("eventbus")
    assert (legacy.events, keys.events) == ("eventbus:events", "{eventbus}:events")
    assert legacy.renamed("eventbus:delivery:msg_1", keys) == keys.delivery("msg_1")
    assert legacy.renamed("eventbus:event:ev1:deliveries", keys) == keys.event_deliveries("ev1")
    with pytest.raises(ValueError, match="not under the prefix"):
        legacy.renamed("other:delivery:msg_1", keys)


def test_scan_patterns_escape_glob_characters_of_the_prefix() -> None:
    assert LegacyKeys("a*b[1]").delivery_pattern == "a\\*b\\[1\\]:delivery:*"
