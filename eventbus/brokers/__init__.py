"""Broker backends. Redis Streams is the default (and only, so far) backend."""

from .redis_streams import RedisStreams, StreamEntry, connect

__all__ = ["RedisStreams", "StreamEntry", "connect"]
