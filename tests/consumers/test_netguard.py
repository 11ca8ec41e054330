"""The private-target guard: the address table, the allow list, the resolver."""

from __future__ import annotations

import pickle
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from consumers.netguard import (
    ForbiddenTarget,
    GuardedResolver,
    TargetPolicy,
    check_url_host,
    forbidden_cause,
    is_forbidden,
    looks_like_ip_literal,
)
from eventbus.errors import ConfigError, EventBusError
from eventbus.settings import SecuritySettings

DEFAULT = TargetPolicy(SecuritySettings())


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        pytest.param("127.0.0.1", "loopback", id="v4-loopback"),
        pytest.param("127.255.0.9", "loopback", id="v4-loopback-range"),
        pytest.param("10.1.2.3", "private", id="rfc1918-10"),
        pytest.param("172.16.0.1", "private", id="rfc1918-172"),
        pytest.param("172.31.255.255", "private", id="rfc1918-172-end"),
        pytest.param("192.168.1.1", "private", id="rfc1918-192"),
        pytest.param("169.254.1.1", "link-local", id="v4-link-local"),
        pytest.param("100.64.0.1", "carrier-grade NAT", id="cgnat"),
        pytest.param("0.0.0.0", "unspecified", id="v4-unspecified"),
        pytest.param("224.0.0.1", "multicast", id="v4-multicast"),
        pytest.param("255.255.255.255", "reserved", id="broadcast"),
        pytest.param("240.0.0.1", "reserved", id="class-e"),
        pytest.param("198.18.0.1", "benchmarking", id="benchmark"),
        pytest.param("192.0.2.1", "documentation", id="test-net-1"),
        pytest.param("169.254.169.254", "metadata", id="metadata-aws"),
        pytest.param("169.254.170.2", "metadata", id="metadata-ecs"),
        pytest.param("100.100.100.200", "metadata", id="metadata-alibaba"),
        pytest.param("fd00:ec2::254", "metadata", id="metadata-aws-v6"),
        pytest.param("::1", "loopback", id="v6-loopback"),
        pytest.param("::", "unspecified", id="v6-unspecified"),
        pytest.param("fc00::1", "unique local", id="v6-ula-fc"),
        pytest.param("fd12:3456::1", "unique local", id="v6-ula-fd"),
        pytest.param("fe80::1", "link-local", id="v6-link-local"),
        pytest.param("fe80::1%eth0", "link-local", id="v6-link-local-zone"),
        pytest.param("ff02::1", "multicast", id="v6-multicast"),
        pytest.param("2001:db8::1", "documentation", id="v6-documentation"),
        pytest.param("::ffff:127.0.0.1", "loopback", id="mapped-loopback"),
        pytest.param("::ffff:7f00:1", "loopback", id="mapped-loopback-hex"),
        pytest.param("::ffff:10.0.0.1", "private", id="mapped-private"),
        pytest.param("::ffff:169.254.169.254", "metadata", id="mapped-metadata"),
        pytest.param("::127.0.0.1", "loopback", id="compatible-loopback"),
        pytest.param("2002:7f00:1::", "loopback", id="6to4-loopback"),
        pytest.param("2002:a9fe:a9fe::1", "metadata", id="6to4-metadata"),
        pytest.param("64:ff9b::7f00:1", "loopback", id="nat64-loopback"),
        pytest.param("64:ff9b::a9fe:a9fe", "metadata", id="nat64-metadata"),
        pytest.param("64:ff9b:1::1", "NAT64", id="nat64-local-use"),
        pytest.param("2001::1", "Teredo", id="teredo"),
        pytest.param("4000::1", "outside IPv6 global unicast", id="v6-unallocated"),
    ],
)
def test_forbidden_addresses(address: str, reason: str) -> None:
    found = is_forbidden(address)
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("8.8.8.8", id="v4-public"),
        pytest.param("93.184.216.34", id="v4-public-2"),
        pytest.param("172.32.0.1", id="just-past-172-16-12"),
        pytest.param("100.128.0.1", id="just-past-cgnat"),
        pytest.param("2606:4700:4700::1111", id="v6-public"),
        pytest.param("::ffff:8.8.8.8", id="mapped-public"),
        pytest.param("2002:808:808::1", id="6to4-public"),
        pytest.param("64:ff9b::808:808", id="nat64-public"),
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert is_forbidden(address) is None
    DEFAULT.check("example.com", address)


def test_not_an_address() -> None:
    with pytest.raises(ValueError):
        is_forbidden("example.com")


@pytest.mark.parametrize(
    ("security", "host", "address", "allowed"),
    [
        pytest.param(SecuritySettings(), "hook.internal", "10.0.0.5", False, id="default"),
        pytest.param(
            SecuritySettings(allow_private_targets=True),
            "hook.internal",
            "10.0.0.5",
            True,
            id="allow-private",
        ),
        pytest.param(
            SecuritySettings(allow_private_targets=True),
            "localhost",
            "::1",
            True,
            id="allow-private-loopback",
        ),
        pytest.param(
            SecuritySettings(allow_private_targets=True),
            "meta",
            "169.254.169.254",
            False,
            id="allow-private-keeps-metadata-closed",
        ),
        pytest.param(
            SecuritySettings(allow_private_targets=True),
            "meta",
            "::ffff:169.254.169.254",
            False,
            id="allow-private-keeps-mapped-metadata-closed",
        ),
        pytest.param(
            SecuritySettings(allowed_hosts=["hook.internal"]),
            "Hook.Internal.",
            "10.0.0.5",
            True,
            id="allow-list-host-name",
        ),
        pytest.param(
            SecuritySettings(allowed_hosts=["hook.internal"]),
            "other.internal",
            "10.0.0.5",
            False,
            id="allow-list-other-name",
        ),
        pytest.param(
            SecuritySettings(allowed_hosts=["10.20.0.0/16"]),
            "x",
            "10.20.3.4",
            True,
            id="allow-list-cidr",
        ),
        pytest.param(
            SecuritySettings(allowed_hosts=["10.20.0.0/16"]),
            "x",
            "10.21.3.4",
            False,
            id="allow-list-cidr-outside",
        ),
        pytest.param(
            SecuritySettings(allowed_hosts=["127.0.0.1"]),
            "x",
            "::ffff:127.0.0.1",
            True,
            id="allow-list-single-address-mapped",
        ),
        pytest.param(
            SecuritySettings(allowed_hosts=["[fd00::1]"]),
            "x",
            "fd00::1",
            True,
            id="allow-list-bracketed-v6",
        ),
        pytest.param(
            SecuritySettings(allowed_hosts=["169.254.169.254"]),
            "meta",
            "169.254.169.254",
            True,
            id="metadata-listed-explicitly",
        ),
    ],
)
def test_policy(security: SecuritySettings, host: str, address: str, allowed: bool) -> None:
    policy = TargetPolicy(security)
    assert (policy.refusal(host, address) is None) is allowed


def test_refusal_message_names_host_address_and_fix() -> None:
    with pytest.raises(ForbiddenTarget) as info:
        DEFAULT.check("hooks.corp", "10.0.0.5")
    message = str(info.value)
    assert "'hooks.corp'" in message
    assert "10.0.0.5" in message
    assert "private network" in message
    assert "security.allowed_hosts" in message
    assert "security.allow_private_targets" in message
    assert info.value.host == "hooks.corp"
    assert info.value.address == "10.0.0.5"
    assert isinstance(info.value, OSError)
    assert isinstance(info.value, EventBusError)


def test_metadata_message_does_not_suggest_allow_private() -> None:
    policy = TargetPolicy(SecuritySettings(allow_private_targets=True))
    with pytest.raises(ForbiddenTarget, match="does not open metadata"):
        policy.check("169.254.169.254", "169.254.169.254")


def test_forbidden_target_pickles() -> None:
    exc = ForbiddenTarget("refused", host="h", address="10.0.0.1", reason="private")
    copy = pickle.loads(pickle.dumps(exc))
    assert str(copy) == "refused"
    assert (copy.host, copy.address, copy.reason) == ("h", "10.0.0.1", "private")


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param("10.0.0.0/33", id="bad-prefix"),
        pytest.param("hooks.internal/path", id="path"),
        pytest.param("", id="empty"),
        pytest.param("two words", id="space"),
    ],
)
def test_bad_allow_list_entry(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"security.allowed_hosts\[0\]"):
        TargetPolicy(SecuritySettings(allowed_hosts=[entry]))


@pytest.mark.parametrize(
    ("host", "literal"),
    [
        pytest.param("127.0.0.1", True, id="v4"),
        pytest.param("::1", True, id="v6"),
        pytest.param("2130706433", True, id="decimal"),
        pytest.param("example.com", False, id="name"),
        pytest.param("0x7f.0.0.1", False, id="hex-goes-to-resolver"),
    ],
)
def test_looks_like_ip_literal(host: str, literal: bool) -> None:
    assert looks_like_ip_literal(host) is literal


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("127.0.0.1", id="loopback"),
        pytest.param("::1", id="v6-loopback"),
        pytest.param("::ffff:127.0.0.1", id="mapped"),
        pytest.param("2002:7f00:1::", id="6to4"),
        pytest.param("169.254.169.254", id="metadata"),
        pytest.param("127.1", id="short-form"),
        pytest.param("2130706433", id="decimal"),
        pytest.param("0177.0.0.1", id="octal"),
        pytest.param("127.0.0.1.", id="trailing-dot"),
    ],
)
def test_check_url_host_refuses_literals(host: str) -> None:
    with pytest.raises(ForbiddenTarget):
        check_url_host(host, DEFAULT)


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("8.8.8.8", id="public-v4"),
        pytest.param("2606:4700:4700::1111", id="public-v6"),
        pytest.param("localhost", id="name-is-left-to-resolver"),
    ],
)
def test_check_url_host_passes(host: str) -> None:
    check_url_host(host, DEFAULT)


def test_check_url_host_allow_private() -> None:
    check_url_host("127.0.0.1", TargetPolicy(SecuritySettings(allow_private_targets=True)))


def test_forbidden_cause_walks_the_chain() -> None:
    refused = ForbiddenTarget("no", host="h", address="10.0.0.1", reason="private")

    class Wrapper(OSError):
        def __init__(self, os_error: OSError) -> None:
            super().__init__()
            self.os_error = os_error

    try:
        try:
            raise Wrapper(refused)
        except Wrapper as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as outer:
        assert forbidden_cause(outer) is refused
    assert forbidden_cause(ValueError("unrelated")) is None


class FakeResolver(AbstractResolver):
    """Answers from a table, as a DNS server under an attacker's control would."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        self.closed = True


TABLE = {
    "public.test": ["93.184.216.34"],
    "rebind.test": ["127.0.0.1"],
    "mixed.test": ["93.184.216.34", "10.0.0.7"],
    "mapped.test": ["::ffff:169.254.169.254"],
}


async def test_resolver_passes_public_names() -> None:
    resolver = GuardedResolver(DEFAULT, FakeResolver(TABLE))
    results = await resolver.resolve("public.test", 443)
    assert [r["host"] for r in results] == ["93.184.216.34"]


@pytest.mark.parametrize(
    ("host", "address"),
    [
        pytest.param("rebind.test", "127.0.0.1", id="rebind-to-loopback"),
        pytest.param("mixed.test", "10.0.0.7", id="one-private-record"),
        pytest.param("mapped.test", "::ffff:a9fe:a9fe", id="mapped-metadata"),
    ],
)
async def test_resolver_refuses(host: str, address: str) -> None:
    resolver = GuardedResolver(DEFAULT, FakeResolver(TABLE))
    with pytest.raises(ForbiddenTarget) as info:
        await resolver.resolve(host, 443)
    assert info.value.host == host
    assert info.value.address == address
    assert host in str(info.value)


async def test_resolver_honours_allow_list_and_closes_inner() -> None:
    inner = FakeResolver(TABLE)
    policy = TargetPolicy(SecuritySettings(allowed_hosts=["rebind.test"]))
    resolver = GuardedResolver(policy, inner)
    assert [r["host"] for r in await resolver.resolve("rebind.test", 80)] == ["127.0.0.1"]
    await resolver.close()
    assert inner.closed


async def test_resolver_defaults_to_aiohttp_resolver() -> None:
    resolver = GuardedResolver(TargetPolicy(SecuritySettings(allow_private_targets=True)))
    try:
        results = await resolver.resolve("localhost", 80)
        assert results
    finally:
        await resolver.close()
    refusing = GuardedResolver(DEFAULT)
    try:
        with pytest.raises(ForbiddenTarget, match="'localhost'"):
            await refusing.resolve("localhost", 80)
    finally:
        await refusing.close()
