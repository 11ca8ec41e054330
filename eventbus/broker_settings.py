"""Broker settings (``broker:``) and the URL checks they share with the rest.

``redact_url`` lives here so that the broker section needs nothing from
``eventbus.settings`` (which re-exports everything in this module's ``__all__``).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .durations import Duration

__all__ = ["BrokerSettings", "amqp_url_problem", "redact_url", "redis_url_problem"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


_SECRET_QUERY_KEYS = ("pass", "token", "secret", "key", "auth")


def redact_url(url: str) -> str:
    """``url`` with any password or token replaced by ``***`` (httpx style).

    Credentials in the user part and secret-looking query parameters
    (``?password=``, ``?token=`` ...) are both redacted; it never raises.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    # Work on the raw netloc: .hostname drops IPv6 brackets and .port raises on junk.
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at:
        cred = f"{userinfo.partition(':')[0]}:***" if ":" in userinfo else "***"
        parts = parts._replace(netloc=f"{cred}@{hostport}")
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(h in k.lower() for k, _ in pairs for h in _SECRET_QUERY_KEYS):
            shown = [
                (k, "***" if any(h in k.lower() for h in _SECRET_QUERY_KEYS) else v)
                for k, v in pairs
            ]
            parts = parts._replace(query=urlencode(shown, safe="*"))
    return urlunsplit(parts)


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def redis_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable Redis URL (never showing its password), or ``None``."""
    shown = redact_url(url)
    example = (
        "e.g. redis://127.0.0.1:6379/0, rediss://user:pass@host:6380/0 or unix:///run/redis.sock"
    )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"{shown!r} is not a valid URL (bad port or brackets): {example}"
    if parts.scheme not in _REDIS_SCHEMES:
        return f"{shown!r} must start with redis://, rediss:// or unix://: {example}"
    if parts.scheme == "unix":
        return None if parts.path else f"{shown!r} names no socket path: {example}"
    if not parts.hostname:
        return f"{shown!r} names no host: {example}"
    if port == 0:
        return f"{shown!r}: port 0 is not a port: {example}"
    database = parts.path.strip("/")
    if database and not database.isdigit():
        return f"{shown!r}: the path must be a database number such as /0, not /{database}"
    return None


def amqp_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable AMQP URL (never showing its password), or ``None``."""
    shown = redact_url(url)
    example = "e.g. amqp://user:pass@127.0.0.1:5672/ or amqps://user:pass@host:5671/vhost"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"{shown!r} is not a valid URL (bad port or brackets): {example}"
    if parts.scheme not in ("amqp", "amqps"):
        return f"{shown!r} must start with amqp:// or amqps://: {example}"
    if not parts.hostname:
        return f"{shown!r} names no host: {example}"
    if port == 0:
        return f"{shown!r}: port 0 is not a port: {example}"
    return None


class BrokerSettings(_Section):
    kind: Literal["redis", "rabbitmq"] = Field(
        "redis",
        description=(
            "where events travel: Redis Streams, or RabbitMQ (amqp_url); delivery records, "
            "retries and routing state stay in Redis (redis_url) either way"
        ),
    )
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    prefix: str = Field("eventbus", pattern=r"^[A-Za-z0-9_.:{}-]{1,64}$")
    stream_maxlen: int | None = Field(
        None,
        ge=1000,
        description=(
            "Approximate cap (XADD MAXLEN ~) set by publishers. Off by default: a blind "
            "cap can trim entries no worker has acknowledged yet. The daemon's safe trim "
            "(consumer.retention) removes only acknowledged entries."
        ),
    )
    socket_timeout: Duration = 5.0
    publish_retries: int = Field(3, ge=0, le=10)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: SecretStr) -> SecretStr:
        problem = redis_url_problem(url.get_secret_value())
        if problem is not None:
            raise ValueError(problem)
        return url

    @field_validator("amqp_url")
    @classmethod
    def _check_amqp_url(cls, url: SecretStr) -> SecretStr:
        problem = amqp_url_problem(url.get_secret_value())
        if problem is not None:
            raise ValueError(problem)
        return url

    @property
    def redis_url_redacted(self) -> str:
        return redact_url(self.redis_url.get_secret_value())

    @property
    def amqp_url_redacted(self) -> str:
        return redact_url(self.amqp_url.get_secret_value())
