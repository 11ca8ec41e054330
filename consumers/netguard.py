"""The private-target guard: outbound requests may not reach internal networks.

A webhook URL is written by whoever configures a channel, and a host name can
resolve to anything. Without a guard, a channel pointed at ``localhost``, at a
name that resolves to ``10.0.0.5``, or at ``169.254.169.254`` turns the
daemon into a proxy into the network it runs in (SSRF). The guard refuses
loopback, private, link-local, CGNAT, multicast, reserved and cloud metadata
addresses, including IPv6 forms that embed an IPv4 address.

The check must happen on the address actually connected to, not on the name
in the URL, or DNS rebinding (a name that resolves to a public address when
checked and to ``127.0.0.1`` when used) walks straight past it. So the guard
lives in two places of the aiohttp connector used by the production client:

- ``GuardedResolver``: every host name is resolved through it; the resolved
  addresses are checked before aiohttp connects to one of them, and
  aiohttp's DNS cache only ever holds addresses that passed.
- ``check_url_host``: aiohttp never calls the resolver for IP literals
  (``aiohttp.connector.TCPConnector._resolve_host`` returns them as they
  are), so hosts that look like IP literals are checked before the request is
  handed to aiohttp.

Operators opt out per host (``security.allowed_hosts``: exact host names or
CIDRs) or globally (``security.allow_private_targets: true``). The global
switch deliberately does not open cloud metadata addresses: a metadata
endpoint hands out the machine's credentials, so it must be listed explicitly.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from eventbus.errors import ConfigError, EventBusError
from eventbus.settings import SecuritySettings

__all__ = [
    "ForbiddenTarget",
    "GuardedResolver",
    "TargetPolicy",
    "check_url_host",
    "forbidden_cause",
    "is_forbidden",
    "looks_like_ip_literal",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = "cloud metadata service"

# Exact addresses of instance metadata services. They sit inside ranges that
# are forbidden anyway; naming them gives a clearer reason and keeps them
# closed when allow_private_targets opens the ranges around them.
_METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, Oracle, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity agent
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity agent over IPv6
    )
)


def _table(rows: Iterable[tuple[str, str]]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), reason) for cidr, reason in rows)


# Explicit tables rather than ipaddress's is_private & co: their exact
# coverage has changed between Python patch releases.
_V4_FORBIDDEN: Final = _table(
    [
        ("0.0.0.0/8", "unspecified / 'this network' (RFC 1122)"),
        ("10.0.0.0/8", "private network (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT shared space (RFC 6598)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (RFC 3927)"),
        ("172.16.0.0/12", "private network (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
        ("192.0.2.0/24", "documentation range TEST-NET-1 (RFC 5737)"),
        ("192.88.99.0/24", "6to4 relay anycast (RFC 7526)"),
        ("192.168.0.0/16", "private network (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking range (RFC 2544)"),
        ("198.51.100.0/24", "documentation range TEST-NET-2 (RFC 5737)"),
        ("203.0.113.0/24", "documentation range TEST-NET-3 (RFC 5737)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved / broadcast (RFC 1112)"),
    ]
)

_V6_FORBIDDEN: Final = _table(
    [
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
        ("100::/64", "discard-only (RFC 6666)"),
        ("2001::/23", "IETF protocol assignments, incl. Teredo and benchmarking (RFC 6890)"),
        ("2001:db8::/32", "documentation range (RFC 3849)"),
        ("3fff::/20", "documentation range (RFC 9637)"),
        ("5f00::/16", "SRv6 segment identifiers (RFC 9602)"),
        ("fc00::/7", "unique local address, private (RFC 4193)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local, deprecated (RFC 3879)"),
        ("ff00::/8", "multicast"),
    ]
)

_GLOBAL_UNICAST_V6: Final = ipaddress.ip_network("2000::/3")
_MAPPED_V6: Final = ipaddress.ip_network("::ffff:0:0/96")
_COMPATIBLE_V6: Final = ipaddress.ip_network("::/96")
_NAT64_V6: Final = ipaddress.ip_network("64:ff9b::/96")


class ForbiddenTarget(EventBusError, OSError):
    """A connection to a private, internal or metadata address was refused.

    An ``OSError`` so that aiohttp treats it like any failed resolution or
    connection (and keeps it as the cause of the error it raises); an
    ``EventBusError`` so that callers can catch it with the rest of ours.
    """

    def __init__(self, message: str, *, host: str, address: str, reason: str) -> None:
        # (errno, strerror): aiohttp's ClientConnectorError shows strerror.
        super().__init__(errno.EACCES, message)
        self.host = host
        self.address = address
        self.reason = reason

    def __str__(self) -> str:
        return str(self.strerror)

    # OSError's pickling passes (errno, strerror) back to __init__.
    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (str(self), self.host, self.address, self.reason))


def _rebuild(message: str, host: str, address: str, reason: str) -> ForbiddenTarget:
    return ForbiddenTarget(message, host=host, address=address, reason=reason)


def _parse_address(value: str | IPAddress) -> IPAddress:
    if isinstance(value, str):
        # Link-local IPv6 results carry a zone ("fe80::1%eth0"); the zone does
        # not change what the address is.
        return ipaddress.ip_address(value.split("%", 1)[0])
    return value


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form routes to, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64_V6 or (ip in _COMPATIBLE_V6 and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _classify(value: str | IPAddress) -> tuple[str, bool] | None:
    """``(reason, is_metadata)`` when ``value`` must not be connected to."""
    ip = _parse_address(value)
    if ip in _METADATA_ADDRESSES:
        return METADATA, True
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            found = _classify(inner)
            if found is None:
                return None
            reason, metadata = found
            return f"{reason}, embedded in IPv6 {ip}", metadata
        table: tuple[tuple[IPNetwork, str], ...] = _V6_FORBIDDEN
    else:
        table = _V4_FORBIDDEN
    for network, reason in table:
        if ip in network:
            return reason, False
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST_V6:
        return "reserved: outside IPv6 global unicast 2000::/3", False
    return None


def is_forbidden(ip: str | IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``None`` when it is).

    IPv4-mapped (``::ffff:a.b.c.d``), IPv4-compatible, 6to4 (``2002::/16``)
    and NAT64 (``64:ff9b::/96``) addresses are judged by the IPv4 address
    they embed. Raises ``ValueError`` when ``ip`` is not an IP address.
    """
    found = _classify(ip)
    return found[0] if found is not None else None


def looks_like_ip_literal(host: str) -> bool:
    """Whether aiohttp would treat ``host`` as an address and skip the resolver.

    Mirrors ``aiohttp.helpers.is_ip_address``: anything with a colon, or only
    digits and dots.
    """
    return ":" in host or (bool(host) and host.replace(".", "").isdigit())


def _normal_host(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


class TargetPolicy:
    """Which targets the operator allows, from ``SecuritySettings``."""

    __slots__ = ("_allow_private", "_hosts", "_networks")

    def __init__(self, security: SecuritySettings) -> None:
        self._allow_private = security.allow_private_targets
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for index, entry in enumerate(security.allowed_hosts):
            text = _normal_host(entry)
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            if not text or "/" in text or ":" in text or any(c.isspace() for c in text):
                raise ConfigError(
                    f"security.allowed_hosts[{index}] = {entry!r} is neither a host name "
                    "nor an IP address or CIDR: use e.g. 'hooks.internal', '10.0.0.5' or "
                    "'10.20.0.0/16'"
                )
            hosts.add(text)
        self._hosts = frozenset(hosts)
        self._networks = tuple(networks)

    @property
    def allow_private(self) -> bool:
        return self._allow_private

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` is listed by name in ``security.allowed_hosts``."""
        return _normal_host(host) in self._hosts

    def _address_listed(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            inner = _embedded_v4(ip)
            if inner is not None:
                candidates.append(inner)
        return any(c in net for c in candidates for net in self._networks)

    def refusal(self, host: str, address: str | IPAddress) -> str | None:
        """Why connecting to ``address`` (for ``host``) is refused, or ``None``."""
        if self.host_allowed(host):
            return None
        ip = _parse_address(address)
        if self._address_listed(ip):
            return None
        found = _classify(ip)
        if found is None:
            return None
        reason, metadata = found
        if self._allow_private and not metadata:
            return None
        return reason

    def check(self, host: str, address: str | IPAddress) -> None:
        """Raise ``ForbiddenTarget`` when ``address`` (for ``host``) is refused."""
        reason = self.refusal(host, address)
        if reason is None:
            return
        shown = str(_parse_address(address))
        if _normal_host(host) == shown:
            what = f"refusing to connect to {shown} ({reason})"
        else:
            what = f"refusing to connect to {host!r}: it resolves to {shown} ({reason})"
        if reason.startswith(METADATA):
            fix = (
                f"if this is really intended, add {shown} to security.allowed_hosts "
                "(allow_private_targets does not open metadata addresses)"
            )
        else:
            fix = (
                f"to allow it, add {_normal_host(host)!r} or a CIDR containing {shown} to "
                "security.allowed_hosts, or set security.allow_private_targets: true"
            )
        raise ForbiddenTarget(f"{what}; {fix}", host=host, address=shown, reason=reason)


def check_url_host(host: str, policy: TargetPolicy) -> None:
    """Check a URL's host when it is an IP literal (which skips the resolver).

    Numeric hosts that are not canonical addresses (``2130706433``,
    ``127.1``, ``0177.0.0.1``) are refused outright: the socket layer would
    map them onto an address nobody reviewed. Host names pass: they are
    checked after resolution by ``GuardedResolver``.
    """
    text = _normal_host(host)
    if not looks_like_ip_literal(text):
        return
    try:
        ip = _parse_address(text)
    except ValueError:
        if policy.host_allowed(host):
            return
        raise ForbiddenTarget(
            f"refusing to connect to {host!r}: a numeric host that is not a canonical "
            "IP address; write the address in the usual dotted (IPv4) or bracketed "
            "(IPv6) form",
            host=host,
            address=host,
            reason="non-canonical IP literal",
        ) from None
    policy.check(host, ip)


def forbidden_cause(exc: BaseException) -> ForbiddenTarget | None:
    """The ``ForbiddenTarget`` behind ``exc``, however it was wrapped.

    aiohttp wraps resolver errors in ``ClientConnectorDNSError`` (keeping the
    original as ``os_error`` and ``__cause__``), and httpx_aiohttp wraps that
    in an ``httpx`` error.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ForbiddenTarget):
            return current
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, ForbiddenTarget):
            return os_error
        current = current.__cause__ or current.__context__
    return None


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses names resolving to forbidden addresses.

    Resolution is delegated (to aiohttp's ``DefaultResolver`` unless another
    is given); if any returned address is refused, the whole name is refused,
    so a name mixing public and private records cannot be used to reach the
    private one. Create it inside the running event loop, as aiohttp's own
    resolvers require.
    """

    def __init__(self, policy: TargetPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner: AbstractResolver = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._policy.host_allowed(host):
            return results
        for result in results:
            self._policy.check(host, result["host"])
        return results

    async def close(self) -> None:
        await self._inner.close()
