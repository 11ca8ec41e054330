"""broker.cluster / redis+cluster:// settings, connect() and the cluster error mapping."""

from __future__ import annotations

import pytest
import redis.exceptions as rexc
from pydantic import ValidationError
from redis.asyncio.cluster import RedisCluster

from eventbus.broker_settings import parse_cluster_url
from eventbus.brokers.cluster import is_cluster, scan_keys
from eventbus.brokers.packing import HiredisConnection
from eventbus.brokers.redis_streams import connect, translate_errors
from eventbus.errors import BrokerError, BrokerUnavailable
from eventbus.settings import Settings

# -- settings -------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "cluster", "expected"),
    [
        pytest.param(
            {"redis_url": "redis://127.0.0.1:6379/0"}, False, "redis://127.0.0.1:6379/0", id="plain"
        ),
        pytest.param(
            {"redis_url": "redis://10.0.0.1:7000", "cluster": True},
            True,
            "redis+cluster://10.0.0.1:7000",
            id="cluster-flag",
        ),
        pytest.param(
            {"redis_url": "rediss://u:pw@10.0.0.1:7000/0", "cluster": True},
            True,
            "rediss+cluster://u:pw@10.0.0.1:7000/0",
            id="cluster-flag-tls",
        ),
        pytest.param(
            {"redis_url": "redis+cluster://a:7000,b:7001,c:7002"},
            True,
            "redis+cluster://a:7000,b:7001,c:7002",
            id="cluster-url",
        ),
    ],
)
def test_cluster_is_carried_by_the_url(
    given: dict[str, object], cluster: bool, expected: str
) -> None:
    broker = Settings(broker=given).broker
    assert broker.cluster is cluster
    assert broker.redis_url.get_secret_value() == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("redis+cluster://a:7000/3", "only database 0", id="database"),
        pytest.param("redis+cluster://a:7000,,b:7001", "names no host", id="empty-seed"),
        pytest.param("redis+cluster://a:70x0", "bad port", id="bad-port"),
        pytest.param("redis+cluster://a:0", "port 0", id="port-zero"),
    ],
)
def test_bad_cluster_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(broker={"redis_url": url})


def test_replica_acks_default_and_their_timeout() -> None:
    assert Settings(broker={"redis_url": "redis://a:6379"}).broker.wait_replicas == 0
    cluster = {"redis_url": "redis+cluster://a:7000"}
    assert Settings(broker=cluster).broker.wait_replicas == 1
    assert Settings(broker={**cluster, "replica_acks": 0}).broker.wait_replicas == 0
    with pytest.raises(ValidationError, match=r"must be shorter than broker\.socket_timeout"):
        Settings(broker={**cluster, "replica_ack_timeout": "5s", "socket_timeout": "5s"})
    relaxed = {**cluster, "replica_acks": 0, "replica_ack_timeout": "9s"}
    assert Settings(broker=relaxed).broker.wait_replicas == 0, "no wait, no conflict"


def test_cluster_flag_refuses_a_unix_socket() -> None:
    with pytest.raises(ValidationError, match="reached over TCP"):
        Settings(broker={"redis_url": "unix:///run/redis.sock", "cluster": True})


def test_the_cluster_password_is_never_shown() -> None:
    url = "redis+cluster://ops:hunter2pw@a:7000,b:7001"
    broker = Settings(broker={"redis_url": url}).broker
    assert "hunter2pw" not in broker.redis_url_redacted
    assert "hunter2pw" not in repr(broker)
    parsed = parse_cluster_url(url)
    assert parsed.password == "hunter2pw" and parsed.username == "ops"
    assert "hunter2pw" not in repr(parsed)
    assert parsed.seeds == (("a", 7000), ("b", 7001))
    with pytest.raises(ValueError) as caught:
        parse_cluster_url("redis+cluster://ops:hunter2pw@a:7000/5")
    assert "hunter2pw" not in str(caught.value)


# -- the error mapping --------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(rexc.ClusterDownError("CLUSTERDOWN"), BrokerUnavailable, id="clusterdown"),
        pytest.param(rexc.MasterDownError("MASTERDOWN"), BrokerUnavailable, id="masterdown"),
        pytest.param(rexc.TryAgainError("TRYAGAIN"), BrokerUnavailable, id="tryagain"),
        pytest.param(rexc.MovedError("3999 127.0.0.1:7002"), BrokerUnavailable, id="moved"),
        pytest.param(rexc.AskError("3999 127.0.0.1:7002"), BrokerUnavailable, id="ask"),
        pytest.param(rexc.SlotNotCoveredError("slot 12"), BrokerUnavailable, id="slot-uncovered"),
        pytest.param(rexc.MaxConnectionsError("too many"), BrokerUnavailable, id="max-conns"),
        pytest.param(rexc.ClusterError("no nodes"), BrokerUnavailable, id="cluster-error"),
        pytest.param(rexc.CrossSlotTransactionError("slots"), BrokerError, id="crossslot-tx"),
        pytest.param(rexc.RedisClusterException("other"), BrokerError, id="cluster-other"),
        pytest.param(rexc.ResponseError("CROSSSLOT Keys"), BrokerError, id="crossslot"),
    ],
)
def test_cluster_errors_map_into_the_eventbus_tree(
    error: Exception, expected: type[BrokerError]
) -> None:
    with pytest.raises(BrokerError) as caught, translate_errors("publish"):
        raise error
    assert type(caught.value) is expected
    assert caught.value.__cause__ is error
    assert str(caught.value).startswith("publish: ")


# -- connect() on a real cluster ------------------------------------------------


@pytest.mark.integration
async def test_connect_gives_a_cluster_client_that_packs_with_hiredis(cluster_url: str) -> None:
    client = connect(cluster_url, max_connections=8)
    try:
        assert is_cluster(client)
        assert isinstance(client, RedisCluster)
        assert await client.ping() is True
        nodes = client.get_nodes()
        assert len(nodes) == 6, "all three masters and three replicas were discovered"
        assert {node.max_connections for node in nodes} == {8}, "per node"
        primary = client.get_node_from_key("{x}")
        assert primary is not None
        await client.set("{x}:probe", "1", ex=30)
        assert {type(c) for c in primary._connections} == {HiredisConnection}
        await client.delete("{x}:probe")
    finally:
        await client.aclose()


@pytest.mark.integration
async def test_scan_keys_finds_keys_on_every_master(cluster_url: str, prefix: str) -> None:
    client = connect(cluster_url)
    names = [f"{prefix}:spread:{number}" for number in range(40)]  # untagged: many slots
    try:
        for name in names:
            await client.set(name, "1", ex=60)
        owners = {client.get_node_from_key(name).name for name in names}
        assert len(owners) == 3, "the keys really are spread over the masters"
        found = {key.decode() async for key in scan_keys(client, f"{prefix}:spread:*", 5)}
        assert found == set(names)
        fresh = connect(cluster_url)  # no command sent yet: no slot map
        try:
            assert {key.decode() async for key in scan_keys(fresh, f"{prefix}:spread:*")} == found
        finally:
            await fresh.aclose()
    finally:
        for name in names:
            await client.delete(name)
        await client.aclose()


@pytest.mark.integration
async def test_an_unreachable_cluster_is_broker_unavailable() -> None:
    client = connect("redis+cluster://127.0.0.1:1", retries=1, socket_timeout=0.5)
    try:
        with (
            pytest.raises(BrokerUnavailable, match="ping: Redis is unreachable"),
            translate_errors("ping"),
        ):
            await client.ping()
    finally:
        await client.aclose()
