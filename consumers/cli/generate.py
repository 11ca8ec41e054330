"""``eventbus urls generate SERVICE``: a service URL from its parts, like ``shoutrrr generate``.

Each service is a list of ``Part``s saying where a value goes in the URL
(user, password, host, port, a path segment, a query key). Values come from
``--set key=value`` or from prompts (secrets typed hidden) and are
percent-encoded so that a ``#``, ``@``, ``/`` or ``:`` inside a token comes
back unchanged from ``consumers.channels.urls.parse_url``; the command checks
that round trip and builds the channel, as ``urls verify`` would, before
printing the URL. The URL goes to stdout alone (``URL=$(eventbus urls
generate ...)``), everything else to stderr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

import click
import httpx
from pydantic import SecretStr

from eventbus.cli import EXIT_USAGE
from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ..channels.base import ChannelDeps, channel_redactor
from ..channels.registry import create_channel
from ..channels.urls import ParsedURL, parse_url

__all__ = ["SERVICES", "Part", "Service", "build_url", "command", "read_parts"]

# Characters left as they are in query values: list separators and the
# characters of chat names (@channel) and room ids (!id:server).
_QUERY_SAFE = ",@:!"


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a service URL.

    ``where``: ``user``, ``password``, ``host``, ``port``, ``path`` (the next
    path segment), ``segments`` (several segments, written with ``/``),
    ``query`` (query key ``key``) or ``query:NAME``, ``userinfo:`` /
    ``userinfo-`` (a token split at its first ``:`` / ``-`` into user and
    password), ``subscheme`` (``generic+https``). A ``fixed`` part is never
    asked for.
    """

    key: str
    prompt: str
    where: str
    secret: bool = False
    required: bool = True
    default: str | None = None
    fixed: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    scheme: str
    summary: str
    parts: tuple[Part, ...]

    @property
    def asked(self) -> tuple[Part, ...]:
        return tuple(part for part in self.parts if part.fixed is None)


def _fixed(where: str, value: str) -> Part:
    return Part(value, "", where, fixed=value)


def _optional(
    key: str, prompt: str, where: str, *, secret: bool = False, default: str | None = None
) -> Part:
    return Part(key, prompt, where, secret, required=False, default=default)


SERVICES: Final[Mapping[str, Service]] = {
    service.name: service
    for service in (
        Service(
            "telegram",
            "telegram",
            "Telegram bot",
            (
                Part("token", "Bot token (123456:ABC..., from @BotFather)", "userinfo:", True),
                _fixed("host", "telegram"),
                Part("chats", "Chats (ids or @channel, comma-separated; chat:thread)", "query"),
            ),
        ),
        Service(
            "discord",
            "discord",
            "Discord webhook",
            (
                Part("token", "Webhook token (.../api/webhooks/ID/TOKEN)", "user", True),
                Part("webhook_id", "Webhook id (the number before the token)", "host"),
            ),
        ),
        Service(
            "slack",
            "slack",
            "Slack incoming webhook",
            (
                _fixed("user", "hook"),
                Part(
                    "token",
                    "Webhook token A-B-C (hooks.slack.com/services/A/B/C)",
                    "password",
                    True,
                ),
                _fixed("host", "webhook"),
            ),
        ),
        Service(
            "slack-bot",
            "slack",
            "Slack bot (chat.postMessage)",
            (
                Part("token", "Bot token (xoxb-...)", "userinfo-", True),
                Part("channel", "Channel id (C0123456789)", "host"),
            ),
        ),
        Service(
            "smtp",
            "smtp",
            "e-mail over SMTP",
            (
                _optional("username", "SMTP user name (empty: no login)", "user"),
                _optional("password", "SMTP password", "password", secret=True),
                Part("host", "SMTP server host", "host"),
                Part("port", "SMTP port", "port", default="587"),
                Part("from", "From address", "query:fromaddress"),
                Part("to", "To addresses (comma-separated)", "query:toaddresses"),
            ),
        ),
        Service(
            "ntfy",
            "ntfy",
            "ntfy topic",
            (
                _optional("token", "Access token (empty: none)", "password", secret=True),
                Part("host", "ntfy server", "host", default="ntfy.sh"),
                Part("topic", "Topic", "path"),
            ),
        ),
        Service(
            "gotify",
            "gotify",
            "Gotify application",
            (
                Part("host", "Gotify server host", "host"),
                Part("token", "Application token", "path", True),
            ),
        ),
        Service(
            "pushover",
            "pushover",
            "Pushover",
            (
                _fixed("user", "shoutrrr"),
                Part("token", "Application API token", "password", True),
                Part("user_key", "User key", "host", True),
            ),
        ),
        Service(
            "matrix",
            "matrix",
            "Matrix room",
            (
                _optional("user", "User name (empty: log in with an access token)", "user"),
                Part("password", "Password or access token", "password", True),
                Part("host", "Homeserver host", "host"),
                Part("rooms", "Rooms (!id:server or #alias:server, comma-separated)", "query"),
            ),
        ),
        Service(
            "mattermost",
            "mattermost",
            "Mattermost incoming webhook",
            (
                _optional("username", "Post as user name (empty: the webhook's)", "user"),
                Part("host", "Mattermost host", "host"),
                Part("token", "Webhook token (.../hooks/TOKEN)", "path", True),
                _optional("channel", "Channel (empty: the webhook's)", "path"),
            ),
        ),
        Service(
            "googlechat",
            "googlechat",
            "Google Chat space webhook",
            (
                _fixed("host", "chat.googleapis.com"),
                _fixed("path", "v1"),
                _fixed("path", "spaces"),
                Part("space", "Space id (.../spaces/SPACE/messages)", "path"),
                _fixed("path", "messages"),
                Part("key", "key= of the webhook URL", "query", True),
                Part("token", "token= of the webhook URL", "query", True),
            ),
        ),
        Service(
            "teams",
            "teams",
            "Microsoft Teams (Power Automate workflow)",
            (Part("workflow_url", "Workflow URL (https://...)", "query:host", True),),
        ),
        Service(
            "generic",
            "generic",
            "any HTTP endpoint",
            (
                Part("scheme", "https or http", "subscheme", default="https"),
                _optional("username", "Basic auth user name (empty: none)", "user"),
                _optional("password", "Basic auth password", "password", secret=True),
                Part("host", "Host", "host"),
                _optional("port", "Port (empty: the default)", "port"),
                _optional("path", "Path (e.g. api/hook)", "segments"),
                _optional(
                    "template",
                    "Body template (json, or empty for plain text)",
                    "query",
                    default="json",
                ),
            ),
        ),
        Service(
            "bark",
            "bark",
            "Bark (iOS push)",
            (
                Part("device_key", "Device key (from the Bark app)", "password", True),
                Part("host", "Bark server host", "host", default="api.day.app"),
                _optional("port", "Port (empty: the default)", "port"),
                _optional("path", "Path on the server (empty: none)", "segments"),
            ),
        ),
        Service(
            "ifttt",
            "ifttt",
            "IFTTT Webhooks",
            (
                Part("key", "Webhooks key (maker.ifttt.com/use/KEY)", "host", True),
                Part("events", "Event names (comma-separated)", "query"),
            ),
        ),
        Service(
            "join",
            "join",
            "Join (joaoapps)",
            (
                _fixed("user", "shoutrrr"),
                Part("api_key", "API key (Join web app, Join API)", "password", True),
                _fixed("host", "join"),
                Part("devices", "Device ids (comma-separated)", "query"),
            ),
        ),
        Service(
            "lark",
            "lark",
            "Lark / Feishu custom bot",
            (
                Part(
                    "host",
                    "open.larksuite.com (Lark) or open.feishu.cn (Feishu)",
                    "host",
                    default="open.larksuite.com",
                ),
                Part("token", "Bot token (.../open-apis/bot/v2/hook/TOKEN)", "path", True),
                _optional("secret", "Signing secret (empty: none)", "query", secret=True),
            ),
        ),
        Service(
            "pushbullet",
            "pushbullet",
            "Pushbullet",
            (
                Part("token", "Access token (o.xxx..., 34 characters)", "host", True),
                _optional("target", "Device iden, #channel or e-mail (empty: all devices)", "path"),
            ),
        ),
        Service(
            "rocketchat",
            "rocketchat",
            "Rocket.Chat incoming webhook",
            (
                _optional("sender", "Post as user name (empty: the webhook's)", "user"),
                Part("host", "Rocket.Chat host", "host"),
                _optional("port", "Port (empty: 443)", "port"),
                Part("token_a", "Webhook token, first part (.../hooks/A/B)", "path", True),
                Part("token_b", "Webhook token, second part", "path", True),
                _optional("channel", "Channel or @user (empty: the webhook's)", "path"),
            ),
        ),
    )
}


@dataclass(slots=True)
class _Pieces:
    subscheme: str = ""
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: str = ""
    path: list[str] | None = None
    query: list[tuple[str, str]] | None = None


def _place(pieces: _Pieces, part: Part, value: str) -> None:
    where = part.where
    if where.startswith("userinfo"):
        separator = where.removeprefix("userinfo")
        user, found, password = value.partition(separator)
        pieces.user, pieces.password = user, password if found else None
    elif where in ("user", "password", "host", "port", "subscheme"):
        setattr(pieces, where, value)
    elif where in ("path", "segments"):
        segments = [value] if where == "path" else [s for s in value.split("/") if s]
        pieces.path = [*(pieces.path or []), *segments]
    else:
        name = where.partition(":")[2] or part.key
        pieces.query = [*(pieces.query or []), (name, value)]


def build_url(service: Service, values: Mapping[str, str]) -> str:
    """The URL of ``service`` with ``values`` (by part key), every part percent-encoded.

    Optional parts without a value are left out.
    """
    pieces = _Pieces()
    for part in service.parts:
        value = part.fixed if part.fixed is not None else values.get(part.key, "")
        if value:
            _place(pieces, part, value)
    scheme = service.scheme + (f"+{pieces.subscheme}" if pieces.subscheme else "")
    userinfo = ""
    if pieces.user is not None or pieces.password is not None:
        userinfo = quote(pieces.user or "", safe="")
        if pieces.password is not None:
            userinfo += ":" + quote(pieces.password, safe="")
        userinfo += "@"
    # A bracketed IPv6 literal keeps its brackets and colons.
    host = pieces.host if pieces.host.startswith("[") else quote(pieces.host, safe="")
    port = f":{pieces.port}" if pieces.port else ""
    path = "".join("/" + quote(segment, safe="") for segment in pieces.path or [])
    url = f"{scheme}://{userinfo}{host}{port}{path}"
    if pieces.query:
        pairs = (f"{quote(k, safe='')}={quote(v, safe=_QUERY_SAFE)}" for k, v in pieces.query)
        url += "?" + "&".join(pairs)
    return url


def read_parts(service: Service, parsed: ParsedURL) -> dict[str, str]:
    """The values of ``service``'s asked parts as ``parsed`` holds them (the round trip)."""
    found: dict[str, str] = {}
    path = list(parsed.path)
    for part in service.parts:
        where = part.where
        if where == "path":
            value, path = (path[0], path[1:]) if path else ("", path)
        elif where == "segments":  # the rest of the path
            value, path = "/".join(path), []
        elif where.startswith("userinfo"):
            value = parsed.user or ""
            if parsed.password is not None:
                value += where.removeprefix("userinfo") + parsed.password
        elif where in ("user", "password", "host", "subscheme"):
            value = getattr(parsed, where) or ""
        elif where == "port":
            value = str(parsed.port) if parsed.port else ""
        else:
            value = parsed.get(where.partition(":")[2] or part.key) or ""
        if part.fixed is None:
            found[part.key] = value
    return found


def _given(service: Service, settings: tuple[str, ...]) -> dict[str, str]:
    keys = [part.key for part in service.asked]
    given: dict[str, str] = {}
    for item in settings:
        key, equals, value = item.partition("=")
        if not equals or key not in keys:
            raise click.BadParameter(
                f"{key!r} is not a part of a {service.name} URL: use one of {', '.join(keys)} "
                "(as --set key=value)",
                param_hint="--set",
            )
        given[key] = value
    return given


def _ask(service: Service, given: dict[str, str]) -> dict[str, str]:
    """The parts not given with --set, from prompts (secrets hidden)."""
    values = dict(given)
    for part in service.asked:
        if part.key in values:
            continue
        label = part.prompt if part.required else f"{part.prompt} [optional]"
        values[part.key] = click.prompt(
            label,
            default=part.default
            if part.default is not None
            else ("" if not part.required else None),
            show_default=part.default is not None,
            hide_input=part.secret,
            err=True,
        ).strip()
    return values


def _list_services() -> None:
    width = max(map(len, SERVICES))
    for service in SERVICES.values():
        keys = " ".join(part.key if part.required else f"[{part.key}]" for part in service.asked)
        click.echo(f"{service.name:<{width}}  {service.summary}: {keys}")


def _check(service: Service, url: str, values: Mapping[str, str]) -> str:
    """What is wrong with the generated URL ("" if nothing): round trip, then the channel."""
    try:
        parsed = parse_url(url)
        back = read_parts(service, parsed)
        changed = sorted(k for k, v in values.items() if v and back.get(k) != v)
        if changed:
            return f"part(s) {', '.join(changed)} would not read back unchanged"
        # Never opened: building a channel makes no request (as in urls verify).
        channel = create_channel(
            ChannelSpec(name="generated", url=SecretStr(url)), ChannelDeps(http=httpx.AsyncClient())
        )
    except ChannelConfigError as exc:
        return str(exc)
    return "✓ valid: " + channel_redactor(channel).mask(channel.describe())


@click.command(
    "generate",
    epilog="""\b
Examples:
  eventbus urls generate --list
  eventbus urls generate telegram --set token=123456789:AAE-bot-token-part --set chats=@opsteam
  eventbus urls generate discord --set token=TOKEN --set webhook_id=123456789012345678
  eventbus urls generate smtp --set username=me --set 'password=p#ss:w/rd' \\
      --set host=mail.example.com --set port=587 --set from=ops@example.com --set to=me@example.com

Without --set, each part is asked for (secrets are typed hidden).""",
)
@click.argument("service", required=False)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A part's value.")
@click.option("--list", "listing", is_flag=True, help="List the services and their parts.")
def command(service: str | None, settings: tuple[str, ...], listing: bool) -> None:
    """Build a service URL from its parts, percent-encoded, and check it."""
    if listing or service is None:
        _list_services()
        return
    found = SERVICES.get(service.lower())
    if found is None:
        raise click.BadParameter(
            f"unknown service {service!r}: use one of {', '.join(SERVICES)}", param_hint="SERVICE"
        )
    values = _ask(found, _given(found, settings))
    for part in found.asked:
        if part.where == "segments":  # a path, written with or without its slashes
            values[part.key] = values.get(part.key, "").strip("/")
    missing = [p.key for p in found.asked if p.required and not values.get(p.key)]
    if missing:
        raise click.UsageError(f"{found.name} URL needs {', '.join(missing)}")
    url = build_url(found, values)
    verdict = _check(found, url, values)
    click.echo(url)
    if not verdict.startswith("✓"):
        click.secho(f"✗ this URL will not work: {verdict}", fg="red", err=True)
        raise SystemExit(EXIT_USAGE)
    click.secho(f"{verdict}\n  see the request it makes: eventbus urls verify 'URL'", err=True)
