"""``eventbus urls verify URL...``: parse shoutrrr-style URLs and explain them.

``eventbus urls generate SERVICE`` (``generate.py``) builds one from its parts.

For each URL (a shoutrrr-style service URL, an Apprise URL of a common
service, or a plain ``http(s)://`` URL, which is a ``webhook`` channel): the
service, how an Apprise URL was read, the redacted settings, the shoutrrr
keys accepted but not honoured (warnings), the
rate limit, and the exact request(s) a sample notification would make (method, endpoint with
secrets masked, headers, body). The plan comes from the same channel code
that sends; nothing is sent. Exit 2 if any URL is invalid.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import click
import httpx
from pydantic import SecretStr

from eventbus.cli import EXIT_USAGE
from eventbus.envelope import Event
from eventbus.errors import ChannelConfigError
from eventbus.redaction import MASK, mask
from eventbus.settings import ChannelSpec

from ..channels._http import SHOWN_HEADERS, USER_AGENT, HttpChannel, PlannedRequest
from ..channels.base import Channel, ChannelDeps, Message
from ..channels.registry import channel_warnings, create_channel
from ..channels.smtp import SmtpChannel
from ..channels.urls import ParsedURL, parse_url
from ..ratelimit import limiter_for
from ..rendering import default_lines, default_title
from .generate import command as generate

__all__ = ["command"]

# query keys holding a secret whatever the service (pushover's encryption key)
_SECRET_KEYS = frozenset({"encryptionkey", "key", "token", "password", "pass"})

# Signs the sample request of a plain webhook URL; it signs nothing real.
_SAMPLE_SECRET = "whsec_" + base64.b64encode(b"eventbus urls verify: sample key").decode()


@click.group("urls", help="Parse and explain shoutrrr-style channel URLs.")
def command() -> None:
    pass


command.add_command(generate)


@command.command(
    "verify",
    epilog="""\b
Examples:
  eventbus urls verify 'telegram://123456:AAE-bot-token@telegram?chats=-1001234567890'
  eventbus urls verify 'discord://TOKEN@123456789012345678' 'ntfy://ntfy.sh/alerts'
  eventbus urls verify 'https://hooks.example.com/eventbus'   # a webhook URL
  eventbus urls verify 'tgram://123456789:AAE-bot-token/-1001234567890'   # Apprise's form

Quote URLs in the shell ('&' and '?' are special). Nothing is sent.""",
)
@click.argument("urls", nargs=-1, required=True)
@click.option(
    "--body/--no-body",
    default=True,
    show_default=True,
    help="Show the request bodies for a sample notification.",
)
def verify(urls: tuple[str, ...], body: bool) -> None:
    """Parse URLs and print exactly what would be sent (sends nothing)."""
    # Channels need a client to be built; this one refuses any request and,
    # never opened and holding no pool, needs no closing (verify may run
    # inside an event loop, where it could not be awaited anyway).
    client = httpx.AsyncClient(transport=httpx.MockTransport(_refuse))
    invalid = sum(not _verify_one(n, url, client, body) for n, url in enumerate(urls, 1))
    if invalid:
        click.secho(f"{invalid} of {len(urls)} URL(s) invalid", fg="red", err=True)
        raise SystemExit(EXIT_USAGE)


def _refuse(request: Any) -> Any:  # pragma: no cover - verify never sends
    raise AssertionError("eventbus urls verify must not send requests")


def _label(index: int, url: str) -> str:
    scheme = url.split(":", 1)[0] if ":" in url else "?"
    return f"URL {index} ({scheme[:30]}://...)"


def _verify_one(index: int, url: str, client: Any, show_body: bool) -> bool:
    try:
        channel, spec, parsed = _build(index, url, client)
    except ChannelConfigError as exc:
        fix = getattr(exc, "fix", "")
        click.secho(
            f"✗ {_label(index, url)}: {exc}" + (f" (fix: {fix})" if fix else ""),
            fg="red",
            err=True,
        )
        return False

    channel_mask = getattr(channel, "mask", None)
    password = parsed.password if parsed is not None else None

    def hide(text: str) -> str:
        text = channel_mask(text) if channel_mask is not None else text
        # belt and braces: the URL password is hidden whatever the service does with it
        return mask(text, [password or ""])

    limiter = limiter_for(spec, channel.type)
    click.secho(f"✓ {_label(index, url)}", fg="green")
    click.echo(f"  service:    {channel.type}")
    click.echo(f"  target:     {hide(channel.describe())}")
    if parsed is not None:
        if parsed.apprise:
            click.echo(f"  apprise:    {parsed.apprise}:// URL, read as the shoutrrr URL below")
        click.echo(f"  url:        {hide(_redacted_url(parsed))}")
        for key, value in parsed.raw_query:
            click.echo(f"    {key} = {_shown_query_value(key, value, hide)}")
    else:
        click.echo(
            "  signing:    Standard Webhooks; shown with a sample secret "
            "(set secret: whsec_... on the channel to sign with yours)"
        )
    # The URL's keys accepted but not acted on, and the service's own advice
    # (the same lines `config check` prints for a channel).
    for warning in channel_warnings(spec):
        click.secho(f"  warning:    {warning}", fg="yellow")
    click.echo(f"  rate limit: {limiter.describe() if limiter else 'none'}")
    if isinstance(channel, HttpChannel | SmtpChannel):
        _print_plan(channel.plan(_sample_message()), hide, show_body)
    return True


def _build(index: int, url: str, client: Any) -> tuple[Channel, ChannelSpec, ParsedURL | None]:
    """The channel a URL makes: a shoutrrr-style service, or a plain http(s) webhook."""
    name = f"url{index}"
    if url.strip().lower().startswith(("http://", "https://")):
        spec = ChannelSpec(name=name, type="webhook", url=SecretStr(url), secret=_SAMPLE_SECRET)
        return create_channel(spec, ChannelDeps(http=client)), spec, None
    parsed = parse_url(url)
    spec = ChannelSpec(name=name, url=SecretStr(url))
    return create_channel(spec, ChannelDeps(http=client)), spec, parsed


def _print_plan(requests: list[PlannedRequest], hide: Callable[[str], str], body: bool) -> None:
    click.echo(f"  requests for a sample notification: {len(requests)}")
    for number, request in enumerate(requests, 1):
        note = f"  ({request.note})" if request.note else ""
        click.echo(f"    {number}. {request.method} {hide(request.safe_url())}{note}")
        for name, value in _shown_headers(request).items():
            click.echo(f"       {name}: {hide(value)}")
        if body:
            click.echo(f"       body ({request.body_kind()}):")
            for line in hide(request.safe_body()).splitlines():
                click.echo(f"         {line}")


def _shown_headers(request: PlannedRequest) -> dict[str, str]:
    headers = request.safe_headers()
    # The HTTP path adds our User-Agent to requests that set none.
    if request.method != "SMTP" and not any(n.lower() == "user-agent" for n in headers):
        headers["User-Agent"] = USER_AGENT
    return headers


def _shown_query_value(key: str, value: str, hide: Callable[[str], str]) -> str:
    # "@Name=value" sets a header (generic://): its value is masked like the
    # request's headers, whatever the name, but for the few never secret.
    if key.startswith("@") and key[1:].lower() not in SHOWN_HEADERS:
        return MASK
    if key.lower() in _SECRET_KEYS:
        return MASK
    return hide(value)


def _redacted_url(parsed: Any) -> str:
    cred = ""
    if parsed.user is not None or parsed.password is not None:
        cred = "***@" if parsed.password is None else f"{parsed.user or ''}:***@"
    scheme = parsed.scheme + (f"+{parsed.subscheme}" if parsed.subscheme else "")
    port = f":{parsed.port}" if parsed.port else ""
    path = "/" + "/".join(parsed.path) if parsed.path else ""
    return f"{scheme}://{cred}{parsed.host}{port}{path}"


def _sample_message() -> Message:
    event = Event(
        event="capsule.create",
        outcome="error",
        team_id="team-1",
        actor={"type": "user", "id": "u1", "name": "alice"},
        resource={"id": "c1", "type": "capsule"},
        metadata={"region": "eu-west-1"},
        error="quota exceeded",
    )
    link = "https://example.com/capsules/c1"
    return Message(
        title=default_title(event),
        body="\n".join(default_lines(event, link)),
        event=event,
        delivery_id="dlv_sample",
        subscription="sample",
        link=link,
        test=True,
    )
