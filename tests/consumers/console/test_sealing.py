"""Secrets sealed with AES-GCM: rotation, tampering, the key format."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from consumers.console import Console, ConsoleStore, Sealer, SealError
from eventbus.keys import Keys
from eventbus.settings import SecuritySettings, Settings

OLD = base64.b64encode(b"o" * 32).decode()
NEW = base64.urlsafe_b64encode(b"\xfb" * 32).decode()
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_sealed_value_opens_only_with_its_key_and_item() -> None:
    sealer = Sealer(SecuritySettings(secret_key=OLD))
    token = sealer.seal(b"hunter2", "channel/a")
    assert "hunter2" not in token and token.startswith("v1.")
    assert sealer.open(token, "channel/a") == b"hunter2"
    with pytest.raises(SealError, match="do not decrypt"):
        sealer.open(token, "channel/b")  # bound to its item
    with pytest.raises(SealError, match="old_secret_keys"):
        Sealer(SecuritySettings(secret_key=NEW)).open(token, "channel/a")
    rotated = Sealer(SecuritySettings(secret_key=NEW, old_secret_keys=[OLD]))
    assert rotated.open(token, "channel/a") == b"hunter2"
    assert rotated.seal(b"x", "c").split(".")[1] != token.split(".")[1], "new key seals"


def test_no_key_cannot_seal_and_says_how_to_set_one() -> None:
    with pytest.raises(SealError, match="EVENTBUS_SECURITY__SECRET_KEY"):
        Sealer(SecuritySettings()).seal(b"x", "c")


@pytest.mark.parametrize(
    "key", [pytest.param("short", id="short"), pytest.param("a" * 60, id="not-32-bytes")]
)
def test_a_bad_key_is_a_clear_settings_error_without_the_key(key: str) -> None:
    with pytest.raises(ValidationError, match="32 random bytes") as caught:
        SecuritySettings(secret_key=key)
    assert "openssl rand -base64 32" in str(caught.value)


@pytest.mark.integration
async def test_rotation_reads_old_items_and_rewrites_them_with_the_new_key(
    make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    before = make_settings(security={"secret_key": OLD})
    keys = Keys(before.broker.prefix)
    hook = {"name": "h", "type": "webhook", "url": "https://x.example/in", "secret": SECRET}
    await Console(before, ConsoleStore(redis, keys, before.security)).create(
        "channel", hook, "team-1", "cli"
    )
    after = make_settings(security={"secret_key": NEW, "old_secret_keys": [OLD]})
    console = Console(after, ConsoleStore(redis, keys, after.security))
    item = await console.store.get("channel", "h")
    assert item is not None and item.body["secret"] == SECRET
    await console.update("channel", "h", {"timeout": 2}, None, "cli")  # re-sealed with NEW
    only_new = make_settings(security={"secret_key": NEW})
    again = await ConsoleStore(redis, keys, only_new.security).get("channel", "h")
    assert again is not None and again.body["secret"] == SECRET
    snapshot = await ConsoleStore(redis, keys, before.security).snapshot()
    assert snapshot.channels == [] and "old_secret_keys" in snapshot.problems[0]
