"""SMTP: URL table, error mapping with a fake client, and end to end against a
real aiosmtpd server on 127.0.0.1 (plain, and STARTTLS with a self-signed
certificate when one can be generated)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
from aiosmtpd.smtp import SMTP as SMTPServer

from consumers.channels.base import ChannelDeps, OutcomeClass
from consumers.channels.registry import create_channel
from consumers.channels.smtp import SmtpChannel
from eventbus.errors import ChannelConfigError
from eventbus.settings import SecuritySettings

from .support import make_message, spec

PASSWORD = "p@ss#w0rd/secret"
ENCODED = "p%40ss%23w0rd%2Fsecret"


LOCAL = SecuritySettings(allow_private_targets=True)  # the test servers are on 127.0.0.1


def build_smtp(
    url: str,
    factory: Callable[..., Any] | None = None,
    security: SecuritySettings = LOCAL,
    **options: Any,
) -> SmtpChannel:
    deps = ChannelDeps(http=httpx.AsyncClient(), smtp_factory=factory, security=security)
    channel = create_channel(spec(url, **options), deps)
    assert isinstance(channel, SmtpChannel)
    return channel


@pytest.mark.parametrize(
    ("url", "port", "encryption", "recipients"),
    [
        pytest.param(
            f"smtp://me:{ENCODED}@mail.example.com:587/?fromAddress=a@x.io&toAddresses=b@x.io,c@x.io",
            587,
            "auto",
            ["b@x.io", "c@x.io"],
            id="docs-form",
        ),
        pytest.param(
            "smtp://mail.example.com/?from=a@x.io&to=b@x.io&encryption=ImplicitTLS",
            465,
            "tls",
            ["b@x.io"],
            id="implicit-tls-default-port",
        ),
        pytest.param(
            "smtp://h:2525/?from=a@x.io&to=b@x.io&encryption=None",
            2525,
            "none",
            ["b@x.io"],
            id="no-tls",
        ),
        pytest.param(
            "smtp://h/?from=a@x.io&to=b@x.io&Encryption=ExplicitTLS",
            25,
            "starttls",
            ["b@x.io"],
            id="explicit-tls",
        ),
    ],
)
def test_url_good(url: str, port: int, encryption: str, recipients: list[str]) -> None:
    channel = build_smtp(url)
    assert (channel.port, channel.encryption, channel.recipients) == (port, encryption, recipients)
    assert PASSWORD not in channel.describe() and PASSWORD not in repr(channel)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("smtp://h/?to=b@x.io", "no sender", id="no-from"),
        pytest.param("smtp://h/?from=a@x.io", "no recipient", id="no-to"),
        pytest.param("smtp://h/?from=a@x.io&to=nobody", "not an e-mail", id="bad-recipient"),
        pytest.param(
            "smtp://h/?from=a@x.io&to=b@x.io&encryption=ssl",
            "None, ExplicitTLS",
            id="bad-encryption",
        ),
        pytest.param(
            "smtp://me:p#ss@h/?from=a@x.io&to=b@x.io", "percent-encode '#'", id="unencoded-hash"
        ),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build_smtp(url)


class FakeSMTP:
    """An aiosmtplib.SMTP stand-in that raises what it is told to."""

    def __init__(self, error: BaseException | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.error = error
        self.closed = False

    async def connect(self) -> None:
        if self.error is not None:
            raise self.error

    async def send_message(self, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], str]:
        return {}, "OK"

    async def quit(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        pytest.param(
            aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials"),
            OutcomeClass.PERMANENT,
            id="auth",
        ),
        pytest.param(
            aiosmtplib.SMTPResponseException(451, "try later"), OutcomeClass.RETRYABLE, id="4xx"
        ),
        pytest.param(
            aiosmtplib.SMTPSenderRefused(550, "no", "a@x.io"), OutcomeClass.PERMANENT, id="5xx"
        ),
        pytest.param(aiosmtplib.SMTPConnectError("refused"), OutcomeClass.RETRYABLE, id="connect"),
        pytest.param(
            aiosmtplib.SMTPConnectTimeoutError("slow"), OutcomeClass.RETRYABLE, id="timeout"
        ),
        pytest.param(
            aiosmtplib.SMTPNotSupported("STARTTLS not supported"),
            OutcomeClass.PERMANENT,
            id="no-starttls",
        ),
        pytest.param(ConnectionRefusedError(111, "refused"), OutcomeClass.RETRYABLE, id="oserror"),
    ],
)
async def test_error_mapping(error: BaseException, outcome: OutcomeClass) -> None:
    made: list[FakeSMTP] = []

    def factory(**kwargs: Any) -> FakeSMTP:
        made.append(FakeSMTP(error, **kwargs))
        return made[-1]

    channel = build_smtp(f"smtp://me:{ENCODED}@h:587/?from=a@x.io&to=b@x.io", factory)
    result = await channel.send(make_message())
    assert result.outcome is outcome
    assert PASSWORD not in (result.error or "")
    assert made[0].kwargs["password"] == PASSWORD and made[0].kwargs["start_tls"] is None


# --- a real SMTP server -------------------------------------------------------


@dataclass
class Inbox:
    messages: list[Any] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    tls: list[bool] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content))
        self.tls.append(session.ssl is not None)
        self.arrived.set()
        return "250 OK"


async def serve(
    inbox: Inbox, tls_context: ssl.SSLContext | None, host: str = "127.0.0.1"
) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTPServer(
            inbox,
            hostname="localhost",
            tls_context=tls_context,
            require_starttls=tls_context is not None,
        ),
        host,
        0,
    )
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def plain_server() -> AsyncIterator[tuple[Inbox, int]]:
    inbox = Inbox()
    server, port = await serve(inbox, None)
    try:
        yield inbox, port
    finally:
        server.close()
        await server.wait_closed()


def self_signed(directory: Path) -> tuple[Path, Path] | None:
    """A certificate for 127.0.0.1, by `cryptography` if installed, else the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            return None
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


async def test_end_to_end_plain(plain_server: tuple[Inbox, int]) -> None:
    inbox, port = plain_server
    channel = build_smtp(
        f"smtp://127.0.0.1:{port}/?from=eventbus@x.io&fromname=Event%20Bus"
        "&to=ops@x.io,oncall@x.io&subject=Prod&encryption=None"
    )
    result = await channel.send(make_message(link="https://l.example/c1"))
    assert result.ok, result.error
    await asyncio.wait_for(inbox.arrived.wait(), 5)
    mail = inbox.messages[0]
    assert inbox.envelopes[0] == ("eventbus@x.io", ["ops@x.io", "oncall@x.io"])
    assert mail["Subject"] == "Prod: capsule.create failed: capsule c1 (team-1)"
    assert mail["From"] == "Event Bus <eventbus@x.io>"
    assert mail["To"] == "ops@x.io, oncall@x.io"
    assert mail["Message-ID"] == "<dlv_1.01HZX0000000000000000000AA@eventbus>"
    assert mail["X-Eventbus-Delivery"] == "dlv_1"
    body = mail.get_payload(decode=True).decode()
    assert "Error: quota exceeded" in body and "https://l.example/c1" in body
    assert inbox.tls == [False]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_private_server_refused_by_default(
    plain_server: tuple[Inbox, int], host: str
) -> None:
    inbox, port = plain_server
    url = f"smtp://{host}:{port}/?from=a@x.io&to=b@x.io&encryption=None"
    result = await build_smtp(url, security=SecuritySettings()).send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert result.error is not None and "refusing to connect" in result.error
    assert "security.allowed_hosts" in result.error, "says how to allow it"
    assert inbox.messages == []


async def test_private_server_allowed_by_name(plain_server: tuple[Inbox, int]) -> None:
    inbox, port = plain_server
    url = f"smtp://localhost:{port}/?from=a@x.io&to=b@x.io&encryption=None"
    allowed = SecuritySettings(allowed_hosts=["localhost"])
    result = await build_smtp(url, security=allowed).send(make_message())
    assert result.ok, result.error
    await asyncio.wait_for(inbox.arrived.wait(), 5)
    assert len(inbox.messages) == 1


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_bracketed_ipv6_host_delivers() -> None:
    inbox = Inbox()
    server, port = await serve(inbox, None, host="::1")
    try:
        channel = build_smtp(f"smtp://[::1]:{port}/?from=a@x.io&to=b@x.io&encryption=None")
        assert channel.describe().startswith(f"smtp [::1]:{port} ")
        result = await channel.send(make_message())
        assert result.ok, result.error
        await asyncio.wait_for(inbox.arrived.wait(), 5)
        assert inbox.envelopes == [("a@x.io", ["b@x.io"])]
    finally:
        server.close()
        await server.wait_closed()


async def test_an_unexpected_client_error_is_a_result_not_a_raise() -> None:
    def factory(**kwargs: Any) -> Any:
        raise ValueError(f"bad client argument (password {PASSWORD})")

    channel = build_smtp(f"smtp://me:{ENCODED}@h:587/?from=a@x.io&to=b@x.io", factory)
    result = await channel.send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert result.error is not None and "ValueError: bad client argument" in result.error
    assert PASSWORD not in result.error


async def test_closed_port_is_retryable(unused_tcp_port: int) -> None:
    url = f"smtp://127.0.0.1:{unused_tcp_port}/?from=a@x.io&to=b@x.io&encryption=None"
    result = await build_smtp(url).send(make_message())
    assert result.outcome is OutcomeClass.RETRYABLE
    assert result.error is not None and "SMTP connection failed" in result.error


async def test_end_to_end_starttls(tmp_path: Path) -> None:
    pair = self_signed(tmp_path)
    if pair is None:
        pytest.skip("neither cryptography nor openssl is available to make a certificate")
    cert, key = pair
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    inbox = Inbox()
    server, port = await serve(inbox, server_context)
    try:
        channel = build_smtp(
            f"smtp://127.0.0.1:{port}/?from=a@x.io&to=b@x.io&encryption=ExplicitTLS",
            ca_file=str(cert),
        )
        result = await channel.send(make_message())
        assert result.ok, result.error
        await asyncio.wait_for(inbox.arrived.wait(), 5)
        assert inbox.tls == [True]

        # Auto: STARTTLS because the server offers it (and requires it here)
        auto = build_smtp(f"smtp://127.0.0.1:{port}/?from=a@x.io&to=c@x.io", ca_file=str(cert))
        assert (await auto.send(make_message())).ok
        assert inbox.tls == [True, True]

        # an untrusted certificate is reported, never sent in clear
        untrusted = build_smtp(
            f"smtp://127.0.0.1:{port}/?from=a@x.io&to=b@x.io&encryption=ExplicitTLS"
        )
        failed = await untrusted.send(make_message())
        assert not failed.ok and len(inbox.messages) == 2
    finally:
        server.close()
        await server.wait_closed()
