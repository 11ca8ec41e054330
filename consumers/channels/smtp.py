"""``smtp``: one mail per message, ``smtp://user:pass@host:port/?from=...&to=a,b``.

Encryption follows shoutrrr: ``None``, ``ExplicitTLS`` (STARTTLS, required),
``ImplicitTLS`` (TLS from the first byte, port 465) and ``Auto`` (the
default: implicit TLS on port 465, otherwise STARTTLS when the server offers
it). The client comes from ``ChannelDeps.smtp_factory`` (``aiosmtplib.SMTP``
by default); its errors are mapped to ``SendResult``s here. The
``Message-ID`` is derived from the delivery id, so a retried mail can be
recognised as the same one.

With the default client, the channel resolves the server itself, refuses
private and metadata addresses like every other outbound connection
(``security.*``, see ``consumers.netguard``), connects to the address it
checked and hands that socket to aiosmtplib, so DNS rebinding cannot slip
past the check. TLS is still verified against the configured host name.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

import aiosmtplib

from eventbus.errors import ChannelConfigError
from eventbus.redaction import Redactor
from eventbus.settings import ChannelSpec

from ..netguard import ForbiddenTarget, TargetPolicy
from ._format import headline, plain_text
from ._http import PlannedRequest
from ._options import Options, channel_url, timeout_of
from .base import ChannelDeps, Message, OutcomeClass, SendResult, timed
from .outcomes import error_result
from .pacing import NO_PACER, Pacer, refusal
from .urls import ParsedURL, split_list

__all__ = ["Encryption", "SmtpChannel", "create"]

_URL_KEYS = (
    "fromaddress", "from", "toaddresses", "to", "fromname", "subject", "encryption",
    "auth", "usehtml", "clienthost", "usestarttls", "requirestarttls", "skiptlsverify",
    "timeout",
)  # fmt: skip
# shoutrrr's smtp_authtype.go; OAuth2 (XOAUTH2) is not honoured (url_warnings)
_AUTH_TYPES = frozenset({"none", "plain", "crammd5", "unknown", "oauth2"})
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s))+$")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_ENCRYPTION = {"none": "none", "explicittls": "starttls", "implicittls": "tls", "auto": "auto"}
Encryption = str  # "none" | "starttls" | "tls" | "auto"


class SmtpChannel:
    type = "smtp"

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        username: str | None = None,
        password: str | None = None,
        from_name: str = "",
        subject_prefix: str = "",
        encryption: Encryption = "auto",
        use_html: bool = False,
        client_host: str | None = None,
        tls_verify: bool = True,
        ca_file: str | None = None,
        timeout: float = 15.0,
        factory: Callable[..., Any] | None = None,
        guard: TargetPolicy | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self._username = username
        self._password = password
        self._from_name = from_name
        self._subject_prefix = subject_prefix
        self.encryption = encryption
        self._use_html = use_html
        self._client_host = client_host
        self._tls_verify = tls_verify
        self._ca_file = ca_file
        self._timeout = timeout
        self._factory = factory or aiosmtplib.SMTP
        # The private-target guard; None with an injected (test) client.
        self._guard = guard if factory is None else None
        self._secrets = tuple(s for s in (password,) if s)
        self._redactor = Redactor(self._secrets)

    @property
    def redactor(self) -> Redactor:
        """What this channel masks (its secrets), for the process-wide log redaction."""
        return self._redactor

    def __repr__(self) -> str:
        return f"<SmtpChannel {self.name!r} {self.describe()}>"

    @property
    def address(self) -> str:
        """``host:port``, an IPv6 host in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def describe(self) -> str:
        who = f"{self._username}@" if self._username else ""
        return (
            f"smtp {who}{self.address} ({self._tls_text()}) "
            f"{self.sender} -> {', '.join(self.recipients)}"
        )

    def _tls_text(self) -> str:
        return {
            "none": "no TLS",
            "starttls": "STARTTLS required",
            "tls": "implicit TLS",
            "auto": "implicit TLS" if self.port == 465 else "STARTTLS if offered",
        }[self.encryption]

    def build(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = headline(message, self._subject_prefix)
        mail["From"] = (
            formataddr((self._from_name, self.sender)) if self._from_name else self.sender
        )
        mail["To"] = ", ".join(self.recipients)
        mail["Date"] = format_datetime(message.event.timestamp)
        mail["Message-ID"] = f"<{message.delivery_id}.{message.event.id}@eventbus>"
        mail["X-Eventbus-Event"] = f"{message.event.event} {message.event.id}"
        mail["X-Eventbus-Delivery"] = message.delivery_id
        text = plain_text(message)
        body = text[len(message.title) :].lstrip("\n") or message.title
        mail.set_content(body)
        if self._use_html:
            import html

            escaped = html.escape(body).replace("\n", "<br>\n")
            mail.add_alternative(f"<html><body><p>{escaped}</p></body></html>", subtype="html")
        return mail

    def plan(self, message: Message) -> list[PlannedRequest]:
        mail = self.build(message)
        part = mail.get_body(("plain",))
        headers = {k: str(v) for k, v in mail.items() if k.lower() != "content-transfer-encoding"}
        auth = f", AUTH as {self._username}" if self._username and self._password else ""
        return [
            PlannedRequest(
                "SMTP",
                f"smtp://{self.address}",
                headers=headers,
                content=part.get_content() if part is not None else "",
                secrets=self._secrets,
                # mail headers built from the message and the URL, never secret
                shown_headers=frozenset(name.lower() for name in headers),
                note=f"{self._tls_text()}{auth}; MAIL FROM {self.sender}; "
                f"RCPT TO {', '.join(self.recipients)}",
            )
        ]

    def _client(self, sock: socket.socket | None = None) -> Any:
        use_tls = self.encryption == "tls" or (self.encryption == "auto" and self.port == 465)
        start_tls: bool | None
        if use_tls or self.encryption == "none":
            start_tls = False
        elif self.encryption == "starttls":
            start_tls = True
        else:
            start_tls = None  # aiosmtplib: STARTTLS if the server offers it
        tls_context = None
        if self._ca_file or not self._tls_verify:
            tls_context = ssl.create_default_context(cafile=self._ca_file)
            if not self._tls_verify:
                tls_context.check_hostname = False
                tls_context.verify_mode = ssl.CERT_NONE
        where: dict[str, Any] = {"hostname": self.host, "port": self.port}
        if sock is not None:  # connected by us, to the address the guard checked
            where = {"hostname": self.host, "sock": sock}
        return self._factory(
            **where,
            username=self._username if self._password else None,
            password=self._password,
            use_tls=use_tls,
            start_tls=start_tls,
            timeout=self._timeout,
            local_hostname=self._client_host,
            tls_context=tls_context,
        )

    async def send(self, message: Message) -> SendResult:
        return await self.send_paced(message, NO_PACER)

    async def send_paced(self, message: Message, pacer: Pacer) -> SendResult:
        wait = await pacer.acquire("", may_refuse=True)
        if wait is not None:
            return refusal(self.name, wait)
        mail = self.build(message)
        try:
            refused, latency = await timed(lambda: self._transaction(mail))
        except aiosmtplib.SMTPException as exc:
            return self._error(exc)
        except ForbiddenTarget as exc:
            # Retrying cannot help until the operator changes security.*.
            return SendResult(OutcomeClass.PERMANENT, error=self.mask(str(exc)))
        except TimeoutError:
            return SendResult(
                OutcomeClass.RETRYABLE,
                error=f"SMTP connection to {self.address} timed out after {self._timeout:g}s",
            )
        except OSError as exc:
            return SendResult(
                OutcomeClass.RETRYABLE, error=self.mask(f"SMTP connection failed: {exc}")
            )
        except Exception as exc:  # a channel never raises: the one table decides
            result = error_result(exc, target=self.describe(), timeout=self._timeout)
            return replace(result, error=self.mask(result.error or ""))
        error = None
        if refused:
            error = self.mask(
                "some recipients were refused: "
                + "; ".join(f"{rcpt}: {resp.code} {resp.message}" for rcpt, resp in refused.items())
            )
        return SendResult(OutcomeClass.DELIVERED, status=250, latency=latency, error=error)

    async def _transaction(self, mail: EmailMessage) -> dict[str, Any]:
        sock = await self._checked_socket() if self._guard is not None else None
        client = self._client(sock)
        try:
            await client.connect()
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        try:
            refused, _ = await client.send_message(
                mail, sender=self.sender, recipients=self.recipients
            )
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        return dict(refused)

    async def _checked_socket(self) -> socket.socket:
        """A socket connected to an address of ``host`` that the guard allows.

        Every address the name resolves to is checked (a name mixing public
        and private records is refused), then they are tried in order.
        """
        assert self._guard is not None
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._timeout):
            infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            for info in infos:
                self._guard.check(self.host, str(info[4][0]))
            failure: OSError = OSError(f"{self.host!r} resolves to no address")
            for family, kind, proto, _, address in infos:
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, address)
                except OSError as exc:
                    sock.close()
                    failure = exc
                    continue
                except BaseException:
                    sock.close()
                    raise
                return sock
            raise failure

    def _error(self, exc: aiosmtplib.SMTPException) -> SendResult:
        text = self.mask(str(exc))
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return SendResult(
                OutcomeClass.PERMANENT,
                status=exc.code,
                error=f"SMTP login rejected ({text}): check the user name and password",
            )
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            codes = [r.code for r in exc.recipients]
            transient = any(400 <= code < 500 for code in codes)
            return SendResult(
                OutcomeClass.RETRYABLE if transient else OutcomeClass.PERMANENT,
                status=codes[0] if codes else None,
                error=f"SMTP server refused every recipient: {text}",
            )
        if isinstance(exc, aiosmtplib.SMTPNotSupported):
            return SendResult(
                OutcomeClass.PERMANENT,
                error=f"SMTP server does not support what is required ({text}); "
                "check encryption= (None, ExplicitTLS, ImplicitTLS, Auto) and the port",
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            outcome = OutcomeClass.RETRYABLE if exc.code < 500 else OutcomeClass.PERMANENT
            return SendResult(outcome, status=exc.code, error=f"SMTP error: {text}")
        return SendResult(
            OutcomeClass.RETRYABLE, error=f"SMTP failed: {type(exc).__name__}: {text}"
        )

    def mask(self, text: str) -> str:
        return self._redactor.mask(text)


def _address(value: str, what: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise ChannelConfigError(f"smtp {what} {value!r} is not an e-mail address")
    return address


def _from_url(url: ParsedURL) -> dict[str, Any]:
    url.check_keys(_URL_KEYS)
    if not url.host:
        raise ChannelConfigError("smtp URL has no host: smtp://user:pass@host:587/?from=&to=")
    sender = url.get("fromaddress") or url.get("from")
    if not sender:
        raise ChannelConfigError("smtp URL has no sender: add from=sender@example.com")
    recipients = split_list(url.get("toaddresses") or url.get("to"))
    if not recipients:
        raise ChannelConfigError("smtp URL has no recipient: add to=a@example.com,b@example.com")
    raw = (url.get("encryption") or "auto").lower().replace("_", "")
    if raw not in _ENCRYPTION:
        raise ChannelConfigError(
            f"smtp encryption {url.get('encryption')!r} is not known: "
            "use None, ExplicitTLS, ImplicitTLS or Auto"
        )
    encryption = _ENCRYPTION[raw]
    if url.get("usestarttls") is not None and url.flag("usestarttls", True) is False:
        encryption = "none" if encryption == "auto" else encryption
    if url.flag("requirestarttls", False) and encryption == "auto":
        encryption = "starttls"
    auth = (url.get("auth") or "").lower()
    if auth and auth not in _AUTH_TYPES:
        raise ChannelConfigError(
            f"smtp auth {url.get('auth')!r} is not known: use None, Plain, CRAMMD5 or Unknown"
        )
    username = url.user or None
    password = url.password
    if auth == "none":
        username = password = None
    port = url.port or (465 if encryption == "tls" else 25)
    return {
        # A bracketed IPv6 literal ([::1]) is an address without its URL
        # brackets: resolvers and sockets do not take them.
        "host": url.host.removeprefix("[").removesuffix("]"),
        "port": port,
        "sender": _address(sender, "from address"),
        "recipients": [_address(r, "recipient") for r in recipients],
        "username": username,
        "password": password,
        "from_name": url.get("fromname") or "",
        "subject_prefix": url.get("subject") or "",
        "encryption": encryption,
        "use_html": url.flag("usehtml", False),
        "client_host": url.get("clienthost") or None,
    }


def _duration(value: str | None) -> float | None:
    """A Go duration (``10s``, ``1m30s``, ``500ms``) in seconds."""
    if not value:
        return None
    text = value.strip().lower()
    if not _DURATION.match(text):
        raise ChannelConfigError(
            f"smtp timeout {value!r} is not a duration: write it like 10s, 1m30s or 500ms"
        )
    seconds = sum(
        float(amount) * _UNIT_SECONDS[unit]
        for amount, unit in re.findall(r"([\d.]+)(h|ms|m|s)", text)
    )
    if not 0 < seconds <= 3600:
        raise ChannelConfigError(f"smtp timeout {value!r} must be more than 0 and at most 1h")
    return seconds


def create(spec: ChannelSpec, deps: ChannelDeps) -> SmtpChannel:
    opts = Options(spec, "smtp")
    tls_verify = opts.flag("tls_verify", True)
    ca_file = opts.string("ca_file")
    opts.done()
    url = channel_url(spec, "smtp")
    assert url is not None
    parts = _from_url(url)
    # shoutrrr's timeout= and skipTLSVerify= apply unless the YAML says otherwise
    url_timeout = _duration(url.get("timeout"))
    timeout = url_timeout if url_timeout is not None and spec.timeout is None else None
    return SmtpChannel(
        spec.name,
        **parts,
        tls_verify=tls_verify and not url.flag("skiptlsverify", False),
        ca_file=ca_file,
        timeout=timeout if timeout is not None else timeout_of(spec, deps),
        factory=deps.smtp_factory,
        guard=TargetPolicy(deps.security),
    )
