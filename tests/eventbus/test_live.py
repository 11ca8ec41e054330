"""The live-mirror message: one format, written in Python and in the publish script."""

from __future__ import annotations

import pytest
import redis as sync_redis

from eventbus.live import live_message, lua_live_message, parse_entry, parse_live
from tests.consumers.fakes import event


def test_python_messages_parse_back() -> None:
    ev = event()
    durable = parse_live(live_message("5-1", ev.to_json()))
    assert (durable.stream_id, durable.event.id) == ("5-1", ev.id)
    transient = parse_live(live_message(None, ev.to_json()))
    assert (transient.stream_id, transient.data) == (None, ev.to_json())


def test_entry_parses_like_its_durable_message() -> None:
    payload = event().to_json()
    assert parse_entry("7-0", payload.encode()) == parse_live(live_message("7-0", payload))


@pytest.mark.integration
def test_lua_expression_builds_the_same_message(redis_url: str) -> None:
    payload = event().to_json()
    client = sync_redis.Redis.from_url(redis_url)
    try:
        built = client.eval("return " + lua_live_message("ARGV[1]", "ARGV[2]"), 0, "9-3", payload)
    finally:
        client.close()
    assert built.decode() == live_message("9-3", payload)
