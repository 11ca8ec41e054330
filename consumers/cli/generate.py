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
from .url_parts import SERVICES, Part, Service

__all__ = ["SERVICES", "Part", "Service", "build_url", "command", "read_parts"]

# Characters left as they are in query values: list separators and the
# characters of chat names (@channel) and room ids (!id:server).
_QUERY_SAFE = ",@:!"


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
