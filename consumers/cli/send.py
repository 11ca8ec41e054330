"""``eventbus send URL... --title T --message M``: one notification, no configuration file.

Like ``shoutrrr send``: each URL (a shoutrrr-style service URL, or a plain
``http(s)://`` URL, which is a Standard Webhooks ``webhook`` channel) is
built into the same channel the daemon would use and sent one message,
through the production HTTP client and its private-target guard. Nothing is
recorded. Exit 0 when every URL delivered, 1 when one failed (the reason is
printed per URL), 2 for an unusable URL or a usage error (then nothing is
sent). Everything printed is masked with the channels' own redaction.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Final

import click
import httpx
from pydantic import SecretStr

from eventbus.cli import EXIT_FAILED, EXIT_USAGE
from eventbus.envelope import Event, Severity
from eventbus.errors import ChannelConfigError
from eventbus.redaction import mask
from eventbus.settings import ChannelSpec, SecuritySettings

from ..channels.base import Channel, ChannelDeps, Message, SendResult, channel_redactor
from ..channels.registry import build_channel, channel_warnings
from ..channels.urls import parse_url
from ..outbound import make_http_client

__all__ = ["SEVERITIES", "command"]

SEVERITIES: Final = tuple(level.value for level in Severity)
_GUARD_HINT = "for eventbus send, pass --allow-private to reach local or private targets"


@dataclass(slots=True)
class _Target:
    """One URL of the command line, built into its channel."""

    index: int
    channel: Channel
    password: str | None
    # Keys the URL sets that are accepted but not acted on, and the service's advice.
    warnings: tuple[str, ...] = ()

    def hide(self, text: str) -> str:
        text = channel_redactor(self.channel).mask(text)
        # belt and braces: the URL password is hidden whatever the service does with it
        return mask(text, [self.password or ""])

    @property
    def label(self) -> str:
        target = self.hide(self.channel.describe())
        if not target.startswith(self.channel.type):
            target = f"{self.channel.type} {target}"
        return f"URL {self.index} ({target})"


@click.command(
    "send",
    epilog="""\b
Examples:
  eventbus send 'ntfy://ntfy.sh/my-alerts' --title 'Disk full' --message 'db1: /var at 97%'
  eventbus send 'discord://TOKEN@123456789012345678' 'https://hooks.example.com/eventbus' \\
      --title Deploy --message 'v1.4 is live' --severity warning
  eventbus send http://127.0.0.1:9000/hook --allow-private --title Test --message hello

With --message - the text comes from stdin: df -h | eventbus send URL -t df -m -

Quote URLs in the shell ('&' and '?' are special). Check a URL first with
'eventbus urls verify URL' (it sends nothing).""",
)
@click.argument("urls", nargs=-1, required=True)
@click.option("--title", "-t", default="eventbus notification", show_default=True)
@click.option("--message", "-m", required=True, help="The text to send; '-' reads it from stdin.")
@click.option(
    "--severity",
    "-s",
    type=click.Choice(SEVERITIES, case_sensitive=False),
    default="info",
    show_default=True,
    help="The event's severity, shown the way each service shows it: colour, priority, "
    "or a [WARNING] / [ERROR] / [CRITICAL] title tag.",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Allow loopback and private targets (local receivers, tests); "
    "security.allow_private_targets for this command.",
)
@click.option("--secret", help="whsec_... key to sign plain http(s) webhook URLs with.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=15.0, show_default=True)
def command(
    urls: tuple[str, ...],
    title: str,
    message: str,
    severity: str,
    allow_private: bool,
    secret: str | None,
    timeout: float,
) -> None:
    """Send one notification to each URL, without a configuration file."""
    if message == "-":
        message = sys.stdin.read().rstrip("\n")
    if not message.strip():
        raise click.UsageError("the message is empty")
    security = SecuritySettings(allow_private_targets=allow_private)
    # Creating the client makes no connection; it is opened (and closed) by _send_all.
    http = make_http_client(security, timeout=timeout)
    deps = ChannelDeps(http=http, security=security, timeout=timeout)
    built = [_build(index, url, deps, secret) for index, url in enumerate(urls, 1)]
    unusable = [error for error in built if isinstance(error, str)]
    if unusable:
        for line in unusable:
            click.secho(f"✗ {line}", fg="red", err=True)
        click.secho(
            f"{len(unusable)} of {len(urls)} URL(s) unusable; nothing was sent", fg="red", err=True
        )
        raise SystemExit(EXIT_USAGE)
    targets = [target for target in built if isinstance(target, _Target)]
    for target in targets:
        for warning in target.warnings:  # as `urls verify` prints them; the URL is not shown
            click.secho(f"! URL {target.index}: {target.hide(warning)}", fg="yellow", err=True)
    refused = [target for target in built if isinstance(target, _Refused)]
    note = _message(title, message, severity.lower())
    results = asyncio.run(_send_all(http, targets, note))
    failed = len(refused)
    for target_refused in refused:
        click.secho(f"✗ {target_refused.text}", fg="red", err=True)
    for target, result in zip(targets, results, strict=True):
        failed += not _report(target, result)
    if failed:
        click.secho(f"{failed} of {len(urls)} URL(s) failed", fg="red", err=True)
        raise SystemExit(EXIT_FAILED)


@dataclass(frozen=True, slots=True)
class _Refused:
    """A URL the private-target guard refuses before anything is sent."""

    text: str


def _spec(index: int, url: str, secret: str | None) -> tuple[ChannelSpec, str | None]:
    name = f"url{index}"
    if url.strip().lower().startswith(("http://", "https://")):
        extra = {"secret": secret} if secret else {}
        return ChannelSpec(name=name, type="webhook", url=SecretStr(url), **extra), None
    parsed = parse_url(url)
    return ChannelSpec(name=name, url=SecretStr(url)), parsed.password


def _build(index: int, url: str, deps: ChannelDeps, secret: str | None) -> _Target | _Refused | str:
    """The channel of one URL, a guard refusal (exit 1), or why it is unusable (exit 2)."""
    scheme = url.split(":", 1)[0][:30] if ":" in url else "?"
    label = f"URL {index} ({scheme}://...)"
    spec: ChannelSpec | None = None
    try:
        spec, password = _spec(index, url, secret)
        channel = build_channel(spec, deps)
        return _Target(index, channel, password, tuple(channel_warnings(spec)))
    except ChannelConfigError as exc:
        # Error texts never quote credentials (consumers.channels.urls).
        reason = f"{label}: {exc}"
        fix = getattr(exc, "fix", "")
        if fix:
            reason += f" (fix: {fix})"
    guarded = not deps.security.allow_private_targets
    if spec is not None and guarded and _usable_when_private_allowed(spec, deps):
        return _Refused(f"{reason}; {_GUARD_HINT}")
    return reason


def _usable_when_private_allowed(spec: ChannelSpec, deps: ChannelDeps) -> bool:
    """Whether only the guard refused ``spec`` (webhooks check their host when built)."""
    opened = ChannelDeps(http=deps.http, security=SecuritySettings(allow_private_targets=True))
    try:
        build_channel(spec, opened)
    except ChannelConfigError:
        return False
    return True


def _message(title: str, text: str, severity: str) -> Message:
    # No outcome: a notification is not the result of an operation.
    event = Event(
        event="eventbus.send",
        severity=Severity(severity),
        team_id="eventbus",
        resource={"type": "cli", "id": "send"},
        metadata={"title": title, "message": text[:1024]},
    )
    return Message(
        title=title, body=text, event=event, delivery_id=f"send_{event.id}", subscription="send"
    )


async def _send_all(
    http: httpx.AsyncClient, targets: list[_Target], message: Message
) -> list[SendResult]:
    # Channels never raise for a failed delivery: each result says what happened.
    async with http:
        return list(await asyncio.gather(*(t.channel.send(message) for t in targets)))


def _report(target: _Target, result: SendResult) -> bool:
    if result.ok:
        status = f"HTTP {result.status}, " if result.status else ""
        click.secho(f"✓ {target.label}: delivered ({status}{result.latency:.2f}s)", fg="green")
        return True
    reason = target.hide(result.error or "no reason given")
    if "allow_private_targets" in reason:
        reason += f"; {_GUARD_HINT}"
    status = f", HTTP {result.status}" if result.status else ""
    click.secho(f"✗ {target.label}: {result.outcome.value}{status}: {reason}", fg="red", err=True)
    return False
