"""RESP command packing in C (hiredis) for the asyncio Redis client.

redis-py's asyncio ``Connection.pack_command`` is pure Python, about 1 us per
argument; the worker's commit script sends hundreds of arguments per batch.
``hiredis.pack_command`` does the same work in C. The sync client already uses
it (``redis.connection.HiredisRespSerializer``); the asyncio client has no such
switch, and its only extension point is the pool's ``connection_class``, so
this module subclasses the three connection classes ``from_url`` picks.

The bytes on the wire are exactly redis-py's: the first argument is split on
whitespace, ``str`` is UTF-8, ``int`` and ``float`` are formatted as ``repr()``,
and anything else goes through the connection's encoder (which raises
``DataError`` for ``bool``, ``None`` and other types). A connection made
with its own ``encoder_class``, or an encoding other than UTF-8/strict,
uses redis-py's packer. Only public redis-py API is used: the connection
classes and their constructor arguments.
"""

from __future__ import annotations

import codecs
import functools
from collections.abc import Callable
from typing import Any

import hiredis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.typing import EncodableT

__all__ = [
    "HiredisConnection",
    "HiredisSSLConnection",
    "HiredisUnixDomainSocketConnection",
    "hiredis_connection_class",
]

# hiredis's stub types its argument as a 1-tuple; it takes any length.
_hiredis_pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command


@functools.cache
def _utf8_strict(encoding: str, errors: str) -> bool:
    if errors != "strict":
        return False
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False  # redis-py's packer raises it, as it would without us


def _as_bytes(value: Any) -> Any:
    # bytearray is refused by hiredis, and hiredis mis-sizes non-contiguous views.
    return bytes(value) if isinstance(value, bytearray | memoryview) else value


class _HiredisPacking(AbstractConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A caller's own encoder class may encode differently: leave it to redis-py.
        self._own_encoder = kwargs.get("encoder_class") is not None
        super().__init__(*args, **kwargs)

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        encoder = self.encoder
        if self._own_encoder or not _utf8_strict(encoder.encoding, encoder.encoding_errors):
            return super().pack_command(*args)
        # From here on, the same steps as redis-py's pack_command.
        assert not isinstance(args[0], float)
        command: Any = args[0]
        if isinstance(command, str):
            args = tuple(command.encode().split()) + args[1:]
        elif b" " in command:
            args = tuple(command.split()) + args[1:]
        if memoryview not in map(type, args):
            try:
                return [_hiredis_pack(args)]
            except TypeError:
                # hiredis takes only exact str/bytes/int and float: bool, None,
                # bytearray and int subclasses (IntEnum) are the encoder's call.
                pass
        encode: Callable[[Any], Any] = encoder.encode
        return [_hiredis_pack(tuple([_as_bytes(encode(arg)) for arg in args]))]


class HiredisConnection(_HiredisPacking, Connection):
    """``redis.asyncio.Connection`` (redis://) packing commands with hiredis."""


class HiredisSSLConnection(_HiredisPacking, SSLConnection):
    """``redis.asyncio.SSLConnection`` (rediss://) packing commands with hiredis."""


class HiredisUnixDomainSocketConnection(_HiredisPacking, UnixDomainSocketConnection):
    """``redis.asyncio.UnixDomainSocketConnection`` (unix://) packing with hiredis."""


_FAST: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: HiredisConnection,
    SSLConnection: HiredisSSLConnection,
    UnixDomainSocketConnection: HiredisUnixDomainSocketConnection,
}


def hiredis_connection_class(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """The hiredis-packing twin of a redis-py connection class.

    Other classes (a caller's own, Sentinel's) are returned unchanged.
    """
    return _FAST.get(cls, cls)
