"""Broker settings (``broker:``) and the URL checks they share with the rest.

``redact_url`` lives here so that the broker section needs nothing from
``eventbus.settings`` (which re-exports everything in this module's ``__all__``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .durations import Duration

__all__ = [
    "CLUSTER_SCHEMES",
    "BrokerSettings",
    "ClusterURL",
    "amqp_url_problem",
    "parse_cluster_url",
    "redact_url",
    "redis_url_problem",
]


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
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
_EXAMPLE = (
    "e.g. redis://127.0.0.1:6379/0, rediss://user:pass@host:6380/0, unix:///run/redis.sock "
    "or, for a Redis Cluster, redis+cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000"
)


@dataclass(frozen=True, slots=True)
class ClusterURL:
    """A ``redis+cluster://`` URL taken apart: seed nodes and shared credentials."""

    seeds: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None = field(repr=False)
    tls: bool

    def __repr__(self) -> str:  # never the password
        return f"ClusterURL(seeds={self.seeds!r}, tls={self.tls})"


def parse_cluster_url(url: str) -> ClusterURL:
    """Split ``redis+cluster://[user:pass@]host:port[,host:port...][/0]``.

    Raises ``ValueError`` naming the bad part (the password never shown).
    """
    shown = redact_url(url)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"{shown!r} must start with redis+cluster:// or rediss+cluster://")
    netloc, _, tail = rest.partition("/")
    path, _, _query = tail.partition("?")
    if path.strip("/") not in ("", "0"):
        raise ValueError(
            f"{shown!r}: a Redis Cluster has only database 0, not /{path.strip('/')}; "
            "drop the path or write /0"
        )
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(secret) if colon else None
    seeds = tuple(_seed(item, shown) for item in hosts.split(","))
    return ClusterURL(seeds, username, password, tls=scheme == "rediss+cluster")


def _seed(item: str, shown: str) -> tuple[str, int]:
    try:
        parts = urlsplit(f"redis://{item}")
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(
            f"{shown!r}: seed node {item!r} has a bad port or brackets ({_EXAMPLE})"
        ) from None
    if not host:
        raise ValueError(f"{shown!r}: seed node {item!r} names no host ({_EXAMPLE})")
    if port == 0:
        raise ValueError(f"{shown!r}: seed node {item!r}: port 0 is not a port ({_EXAMPLE})")
    return host, port or 6379


def redis_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable Redis URL (never showing its password), or ``None``."""
    shown = redact_url(url)
    example = _EXAMPLE
    if url.partition("://")[0] in CLUSTER_SCHEMES:
        try:
            parse_cluster_url(url)
        except ValueError as exc:
            return str(exc)
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"{shown!r} is not a valid URL (bad port or brackets): {example}"
    if parts.scheme not in _REDIS_SCHEMES:
        return (
            f"{shown!r} must start with redis://, rediss://, unix:// or redis+cluster://: {example}"
        )
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
    # No '#': it separates the prefix from the partition in a partition's tag
    # (eventbus.keys), so no prefix's tag is another's partition.
    prefix: str = Field("eventbus", pattern=r"^[A-Za-z0-9_.:{}-]{1,64}$")
    partitions: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "Streams the events are spread over, by a stable hash of team_id; each with its "
            "own hash tag (so a Redis Cluster puts them on different nodes), group, records "
            "and retries. Every worker reads every partition. Changing it on a running "
            "deployment is refused unless the streams are drained (docs/operations.md)."
        ),
    )
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
    cluster: bool = Field(
        False,
        description=(
            "redis_url is a Redis Cluster node (redis-py's RedisCluster discovers the "
            "rest). A redis:// or rediss:// URL is then read as redis+cluster:// with that "
            "one seed; a redis+cluster:// URL (several seeds, comma separated) sets it."
        ),
    )
    replica_acks: int | None = Field(
        None,
        ge=0,
        le=5,
        description=(
            "Replicas that must confirm a durable publish (Redis WAIT) before it returns: "
            "without it, a master that dies before replicating loses acknowledged events "
            "in the failover. Unset: 1 on a cluster (broker.cluster), 0 on a single node."
        ),
    )
    replica_ack_timeout: Duration = 2.0

    @property
    def wait_replicas(self) -> int:
        """``replica_acks``, or its default for the deployment."""
        if self.replica_acks is not None:
            return self.replica_acks
        return 1 if self.cluster else 0

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: SecretStr) -> SecretStr:
        problem = redis_url_problem(url.get_secret_value())
        if problem is not None:
            raise ValueError(problem)
        return url

    @model_validator(mode="after")
    def _cluster_form(self) -> BrokerSettings:
        # Every client is built from redis_url alone (brokers.connect), so
        # ``cluster: true`` is carried by the URL's scheme.
        url = self.redis_url.get_secret_value()
        scheme, _, rest = url.partition("://")
        if scheme in CLUSTER_SCHEMES:
            self.cluster = True
        elif self.cluster:
            if scheme == "unix":
                raise ValueError(
                    "broker.cluster is true but broker.redis_url is a unix:// socket: a "
                    "Redis Cluster is reached over TCP, e.g. redis+cluster://10.0.0.1:7000"
                )
            self.redis_url = SecretStr(f"{scheme}+cluster://{rest}")
            problem = redis_url_problem(self.redis_url.get_secret_value())
            if problem is not None:
                raise ValueError(f"broker.cluster is true: {problem}")
        return self

    @model_validator(mode="after")
    def _wait_within_the_socket_timeout(self) -> BrokerSettings:  # after _cluster_form
        if self.wait_replicas and self.replica_ack_timeout >= self.socket_timeout:
            raise ValueError(
                f"broker.replica_ack_timeout ({self.replica_ack_timeout:g}s) must be shorter "
                f"than broker.socket_timeout ({self.socket_timeout:g}s): the publish waits for "
                "replicas on its connection, which would time out first"
            )
        return self

    @model_validator(mode="after")
    def _partitions_on_redis_only(self) -> BrokerSettings:
        if self.kind == "rabbitmq" and self.partitions > 1:
            raise ValueError(
                f"broker.partitions is {self.partitions} but broker.kind is rabbitmq: "
                "partitions spread Redis streams; a RabbitMQ quorum queue is its own unit "
                "of scale (add workers instead). Set broker.partitions to 1 or use kind: redis"
            )
        return self

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
