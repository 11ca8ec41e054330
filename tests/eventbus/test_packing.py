"""hiredis command packing: byte-for-byte redis-py's, and what connect() uses."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from eventbus.brokers import packing
from eventbus.brokers.packing import (
    HiredisConnection,
    HiredisSSLConnection,
    HiredisUnixDomainSocketConnection,
    hiredis_connection_class,
)
from eventbus.brokers.redis_streams import connect


class Color(enum.IntEnum):
    RED = 1


class Mode(enum.StrEnum):
    FAST = "fast"


class Seconds(float):
    pass


def commit_like(n: int) -> tuple[Any, ...]:
    """An EVALSHA shaped like the worker's commit: keys, records, scores."""
    args: list[Any] = ["EVALSHA", "a" * 40, 2, "eb:events", "eb:dlq", "workers", 604800]
    for i in range(n):
        args += [f"eb:delivery:{i}", b'{"status":"sent","n":%d}' % i, 1732390000.123456 + i]
    return tuple(args)


def pure(*args: Any, **kwargs: Any) -> bytes:
    return b"".join(Connection(**kwargs).pack_command(*args))


def fast(*args: Any, **kwargs: Any) -> bytes:
    return b"".join(HiredisConnection(**kwargs).pack_command(*args))


PACKED = [
    pytest.param(("PING",), id="one-arg"),
    pytest.param(("GET", "key"), id="str"),
    pytest.param(("CONFIG GET", "maxmemory"), id="str-command-split"),
    pytest.param((b"CONFIG GET", b"maxmemory"), id="bytes-command-split"),
    pytest.param(("CLIENT  SETNAME\tx",), id="command-split-on-any-whitespace"),
    pytest.param(("SET", "ключ", "值 ✓"), id="unicode"),
    pytest.param(("SET", b"\x00\xff\r\n", b""), id="binary-and-empty-bytes"),
    pytest.param(("SET", "k", ""), id="empty-str"),
    pytest.param(("SET", "k", "a b c"), id="spaces-outside-command-kept"),
    pytest.param(("SET", bytearray(b"k"), bytearray(b"v")), id="bytearray"),
    pytest.param(("SET", memoryview(b"k"), memoryview(b"value")), id="memoryview"),
    pytest.param(("INCRBY", "k", 0, -5, 2**70), id="ints"),
    pytest.param(("ZADD", "z", 1732390000.123456, "m"), id="float-timestamp"),
    pytest.param(("F", 0.1, 1e20, 1e-7, 1e16, 1.0, -0.0, 123456789012345678.0), id="float-reprs"),
    pytest.param(("F", float("inf"), float("-inf"), float("nan")), id="float-non-finite"),
    pytest.param(("SET", Color.RED, Mode.FAST), id="enum-members"),
    pytest.param(("ZADD", "z", Seconds(2.5), "m"), id="float-subclass"),
    pytest.param(("SET", "k", "x" * 10_000), id="large-value-chunked-by-redis-py"),
    pytest.param(commit_like(230), id="700-arg-evalsha"),
]


@pytest.mark.parametrize("args", PACKED)
def test_same_bytes_as_redis_py(args: tuple[Any, ...]) -> None:
    assert fast(*args) == pure(*args)


@pytest.mark.parametrize(
    ("fast_class", "base"),
    [
        pytest.param(HiredisConnection, Connection, id="tcp"),
        pytest.param(HiredisSSLConnection, SSLConnection, id="ssl"),
        pytest.param(HiredisUnixDomainSocketConnection, UnixDomainSocketConnection, id="unix"),
    ],
)
def test_every_connection_class_packs_like_its_base(
    fast_class: type[Connection], base: type[Connection]
) -> None:
    args = commit_like(5)
    assert issubclass(fast_class, base)
    assert b"".join(fast_class().pack_command(*args)) == b"".join(base().pack_command(*args))


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(True, id="bool"),
        pytest.param(False, id="false"),
        pytest.param(None, id="none"),
        pytest.param(object(), id="object"),
        pytest.param([1], id="list"),
        pytest.param({"a": 1}, id="dict"),
    ],
)
def test_unsupported_types_raise_data_error_like_redis_py(bad: Any) -> None:
    with pytest.raises(DataError) as expected:
        pure("SET", "k", bad)
    with pytest.raises(DataError) as got:
        fast("SET", "k", bad)
    assert str(got.value) == str(expected.value)


def test_unencodable_str_raises_like_redis_py() -> None:
    with pytest.raises(UnicodeEncodeError):
        pure("SET", "k", "\udcff")
    with pytest.raises(UnicodeEncodeError):
        fast("SET", "k", "\udcff")


@pytest.mark.parametrize(
    "encoder",
    [
        pytest.param({"encoding": "latin-1"}, id="latin-1"),
        pytest.param({"encoding_errors": "replace"}, id="utf-8-replace"),
        pytest.param({"encoding": "UTF8"}, id="utf-8-spelled-differently"),
    ],
)
def test_other_encoder_settings_are_honoured(encoder: dict[str, str]) -> None:
    args = ("SET", "café", "\udcff" if "encoding_errors" in encoder else "é", 1.5)
    assert fast(*args, **encoder) == pure(*args, **encoder)


def test_hiredis_does_the_packing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    real = packing._hiredis_pack
    assert real is not None

    def spy(args: tuple[Any, ...]) -> bytes:
        calls.append(args)
        return real(args)

    monkeypatch.setattr(packing, "_hiredis_pack", spy)
    HiredisConnection().pack_command("CONFIG GET", "maxmemory")
    HiredisConnection().pack_command("SET", "k", bytearray(b"v"))  # the encoder's path
    assert calls == [
        (b"CONFIG", b"GET", "maxmemory"),
        (b"SET", "k", bytearray(b"v")),  # refused by hiredis (TypeError)
        (b"SET", b"k", b"v"),
    ]


def test_an_encoder_class_of_its_own_is_left_to_redis_py() -> None:
    base: Any = type(Connection().encoder)  # redis-py's, without naming a private module

    class Shouting(base):  # type: ignore[misc]
        def encode(self, value: Any) -> Any:
            return super().encode(value.upper() if isinstance(value, str) else value)

    args = ("SET", "k", "quiet")
    packed = b"".join(HiredisConnection(encoder_class=Shouting).pack_command(*args))
    assert packed == b"".join(Connection(encoder_class=Shouting).pack_command(*args))
    assert b"QUIET" in packed


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("redis://127.0.0.1:6379/0", HiredisConnection, id="redis"),
        pytest.param("rediss://127.0.0.1:6380/0", HiredisSSLConnection, id="rediss"),
        pytest.param("unix:///run/redis.sock?db=1", HiredisUnixDomainSocketConnection, id="unix"),
    ],
)
async def test_connect_uses_the_hiredis_packer(url: str, expected: type[Connection]) -> None:
    client = connect(url)
    try:
        assert client.connection_pool.connection_class is expected
    finally:
        await client.aclose()


def test_unknown_connection_classes_are_left_alone() -> None:
    class Custom(Connection):
        pass

    assert hiredis_connection_class(Custom) is Custom


# -- against a real Redis -----------------------------------------------------


@pytest.fixture
async def fast_redis(redis: aioredis.Redis, redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A connect() client; the plain ``redis`` fixture cross-checks and cleans up."""
    client = connect(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.mark.integration
async def test_round_trip_values(
    fast_redis: aioredis.Redis, redis: aioredis.Redis, prefix: str
) -> None:
    values: dict[str, Any] = {
        "str": "héllo wörld",
        "bytes": b"\x00\x01\xff\r\n",
        "float": 1732390000.123456,
        "int": -42,
        "empty": "",
    }
    for name, value in values.items():
        assert await fast_redis.set(f"{prefix}:{name}", value)
    got = {name: await redis.get(f"{prefix}:{name}") for name in values}
    assert got == {
        "str": "héllo wörld".encode(),
        "bytes": b"\x00\x01\xff\r\n",
        "float": b"1732390000.123456",
        "int": b"-42",
        "empty": b"",
    }
    assert await fast_redis.get(f"{prefix}:str") == "héllo wörld".encode()
    assert await fast_redis.config_get("maxmemory")  # "CONFIG GET" is split


@pytest.mark.integration
async def test_script_with_many_arguments(fast_redis: aioredis.Redis, prefix: str) -> None:
    script = fast_redis.register_script(
        "redis.call('SET', KEYS[1], ARGV[#ARGV]) return {#ARGV, ARGV[1], ARGV[2], ARGV[3]}"
    )
    args: list[Any] = ["first", 0.1, 7, *(f"item-{i}" for i in range(1000)), b"last\x00"]
    assert await script(keys=[f"{prefix}:script"], args=args) == [1004, b"first", b"0.1", b"7"]
    assert await fast_redis.get(f"{prefix}:script") == b"last\x00"


@pytest.mark.integration
async def test_streams_and_pipelines(fast_redis: aioredis.Redis, prefix: str) -> None:
    stream = f"{prefix}:stream"
    await fast_redis.xgroup_create(stream, "workers", id="0", mkstream=True)
    async with fast_redis.pipeline(transaction=False) as pipe:
        for i in range(3):
            pipe.xadd(stream, {"payload": f'{{"n":{i}}}', "at": 1.5 + i})
        ids = await pipe.execute()
    read = await fast_redis.xreadgroup("workers", "w1", {stream: ">"}, count=10)
    [(name, entries)] = read
    assert name == stream.encode()
    assert [entry_id for entry_id, _ in entries] == ids
    assert entries[2][1] == {b"payload": b'{"n":2}', b"at": b"3.5"}
    assert await fast_redis.xack(stream, "workers", *ids) == 3
