"""Parsing shoutrrr-style service URLs (``discord://TOKEN@ID``, ``smtp://...``).

shoutrrr parses with Go's ``net/url``: the authority ends at the first ``/``,
``?`` or ``#``, credentials are split at the last ``@`` and must be
percent-encoded, query keys are case-insensitive. We follow the same syntax so
operators can reuse their URLs, but where Go would silently cut a password at
a ``#`` we say which part broke and what to encode.

A ``ParsedURL`` never shows credentials, path or query in ``repr``/``str``:
any of them may hold a token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._apprise import APPRISE_SCHEMES, translate
from ._compat import UNHONOURED, canonical_key, url_warnings
from ._suggest import did_you_mean

__all__ = ["SCHEMES", "ParsedURL", "parse_url", "spec_url_warnings", "split_list"]

# scheme -> one-line example, for errors and ``eventbus urls verify``
SCHEMES: dict[str, str] = {
    "discord": "discord://TOKEN@WEBHOOK_ID",
    "generic": "generic://host/path?template=json  or  generic+https://host/path",
    "googlechat": "googlechat://chat.googleapis.com/v1/spaces/SPACE/messages?key=K&token=T",
    "gotify": "gotify://host/TOKEN",
    "matrix": "matrix://:ACCESS_TOKEN@host/?rooms=!room:server",
    "mattermost": "mattermost://host/TOKEN[/channel]",
    "ntfy": "ntfy://ntfy.sh/TOPIC",
    "pushover": "pushover://shoutrrr:APITOKEN@USERKEY/",
    "slack": "slack://hook:A-B-C@webhook  or  slack://xoxb:TOKEN@CHANNEL",
    "smtp": "smtp://user:pass@host:587/?from=a@example.com&to=b@example.com",
    "teams": "teams://?host=<percent-encoded workflow URL>",
    "telegram": "telegram://TOKEN@telegram?chats=@channel,12345",
    "bark": "bark://:DEVICE_KEY@host",
    "ifttt": "ifttt://KEY/?events=event1,event2",
    "join": "join://shoutrrr:API_KEY@join/?devices=ID1,ID2",
    "lark": "lark://open.larksuite.com/TOKEN?secret=SECRET",
    "pushbullet": "pushbullet://TOKEN[/device/#channel/email]",
    "rocketchat": "rocketchat://[sender@]host/TOKEN_A/TOKEN_B[/channel]",
    "signal": "signal://host:8080/+SOURCE_NUMBER/+RECIPIENT_NUMBER",
    "wecom": "wecom://WEBHOOK_KEY",
    "zulip": "zulip://BOT%40example.com:API_KEY@example.zulipchat.com/?stream=alerts",
    "pagerduty": "pagerduty:///INTEGRATION_KEY",
    "opsgenie": "opsgenie://api.opsgenie.com/API_KEY",
}

# Services whose path names targets, as shoutrrr reads them: an '@' there is
# a user or an e-mail address, and a '#' starts Go's fragment, a channel
# (pushbullet://TOKEN/a@b.example/#channel, rocketchat://host/A/B/@user).
TARGET_PATH_SCHEMES = frozenset({"pushbullet", "rocketchat"})

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", re.DOTALL)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODE_HINT = {"#": "%23", "@": "%40", "/": "%2F", "?": "%3F", ":": "%3A", "%": "%25", " ": "%20"}


def _hint(char: str) -> str:
    return f"percent-encode {char!r} as {_ENCODE_HINT.get(char, '%XX')}"


@dataclass(frozen=True, slots=True, repr=False)
class ParsedURL:
    """The parts of a service URL, percent-decoded.

    ``query`` has lower-cased keys (shoutrrr's keys are case-insensitive),
    aliases filed under the name the channel reads (``channels`` as
    ``chats``); ``raw_query`` keeps the original keys in order (``generic``
    needs the case of ``@Header`` and ``$field`` names). ``apprise`` is the
    Apprise scheme the URL was written with, when it was one (``tgram``).
    """

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    path: tuple[str, ...]
    query: dict[str, str] = field(default_factory=dict)
    raw_query: tuple[tuple[str, str], ...] = ()
    # for "generic+https": the part after "+"
    subscheme: str = ""
    # after the first '#', percent-decoded (TARGET_PATH_SCHEMES only)
    fragment: str = ""
    apprise: str = ""

    def __repr__(self) -> str:
        return f"ParsedURL(scheme={self.scheme!r}, <redacted>)"

    __str__ = __repr__

    @property
    def service(self) -> str:
        return self.scheme

    def base(self, scheme: str, *path: str, host: str | None = None) -> str:
        """``scheme://host[:port][/path...]``: where the service's requests go.

        ``host`` replaces the URL's own (a service's default host).
        """
        name = host or self.host
        netloc = f"{name}:{self.port}" if self.port else name
        return "/".join([f"{scheme}://{netloc}", *path])

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.query.get(key.lower(), default)

    def flag(self, key: str, default: bool) -> bool:
        """A yes/no query value (``yes``, ``true``, ``1``, ``no``, ``false``, ``0``)."""
        value = self.get(key)
        if value is None or value == "":
            return default
        return parse_flag(value, f"query key {key!r}")

    def integer(self, key: str, low: int, high: int) -> int | None:
        value = self.get(key)
        if value is None or value == "":
            return None
        try:
            number = int(value)
        except ValueError:
            number = high + 1
        if not low <= number <= high:
            raise ChannelConfigError(
                f"{self.scheme} URL: query key {key!r} is {value!r}: "
                f"use a whole number from {low} to {high}"
            )
        return number

    def warnings(self) -> list[str]:
        """The accepted shoutrrr keys this URL sets that eventbus does not act on."""
        return url_warnings(self.scheme, self.raw_query, self.path)

    def check_keys(self, known: Iterable[str]) -> None:
        """Reject query keys the service does not know (typos would be silently ignored).

        Keys shoutrrr takes but eventbus cannot honour are known too (``warnings``).
        """
        allowed = {k.lower() for k in known} | set(UNHONOURED.get(self.scheme, {}))
        unknown = sorted(k for k in self.query if k not in allowed)
        if unknown:
            raise ChannelConfigError(
                f"{self.scheme} URL: unknown query key(s) {', '.join(map(repr, unknown))}; "
                f"known keys are {', '.join(sorted(allowed)) or '(none)'}"
            )


def parse_flag(value: str, what: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"yes", "true", "1", "on", "y"}:
        return True
    if lowered in {"no", "false", "0", "off", "n"}:
        return False
    raise ChannelConfigError(f"{what} is {value!r}: use yes or no")


def split_list(value: str | None) -> list[str]:
    """``a,b, c`` -> ``["a", "b", "c"]`` (empty items dropped)."""
    if not value:
        return []
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_url(url: str, *, schemes: Iterable[str] | None = None) -> ParsedURL:
    """Parse a shoutrrr-style URL; raises ``ChannelConfigError`` naming the broken part.

    ``schemes`` limits the accepted services (default: every known one).
    An Apprise URL of a common service (``tgram://``, ``mailtos://``, ...) is
    read as the shoutrrr URL it means (``_apprise``).
    Error messages never include the credentials themselves.
    """
    apprise = ""
    match = _SCHEME_RE.match(url.strip())
    if match is not None and match.group(2).startswith("//"):
        translated = translate(match.group(1), match.group(2)[2:])
        if translated is not None:
            apprise, url = match.group(1).lower(), translated
    scheme, subscheme, rest = _scheme(url, sorted(schemes if schemes is not None else SCHEMES))
    fragment = ""
    if scheme in TARGET_PATH_SCHEMES:
        rest, _, fragment = rest.partition("#")
    authority, path_part, query_part = _split_rest(scheme, rest)
    user, password, hostport = _credentials(scheme, authority)
    host, port = _split_host(scheme, hostport)
    segments = tuple(unquote(segment) for segment in path_part.split("/") if segment)
    raw_query = tuple(parse_qsl(query_part, keep_blank_values=True))
    query = {canonical_key(scheme, key.lower()): value for key, value in raw_query}
    return ParsedURL(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        path=segments,
        query=query,
        raw_query=raw_query,
        subscheme=subscheme,
        fragment=unquote(fragment),
        apprise=apprise,
    )


def spec_url_warnings(spec: ChannelSpec) -> list[str]:
    """``ParsedURL.warnings`` of a channel's ``url:``; none for a URL that does not
    parse (building the channel reports that) or a plain http(s) one."""
    if spec.url is None:
        return []
    raw = spec.url.get_secret_value()
    if raw.split(":", 1)[0].lower() in ("http", "https"):
        return []
    try:
        return parse_url(raw).warnings()
    except ChannelConfigError:
        return []


def _scheme(url: str, known: list[str]) -> tuple[str, str, str]:
    """(scheme, subscheme, what follows ``scheme://``)."""
    match = _SCHEME_RE.match(url.strip())
    if match is None:
        raise ChannelConfigError(
            "channel URL has no scheme: write it as service://..., "
            f"e.g. {SCHEMES['telegram']} (known services: {', '.join(known)})"
        )
    full_scheme, rest = match.group(1).lower(), match.group(2)
    scheme, _, subscheme = full_scheme.partition("+")
    if scheme not in known:
        hint = did_you_mean([scheme], [*known, *APPRISE_SCHEMES])
        raise ChannelConfigError(
            f"unknown URL scheme {full_scheme!r}: use one of {', '.join(known)} "
            f"(or Apprise's {', '.join(sorted(APPRISE_SCHEMES))})" + (f"; {hint}" if hint else "")
        )
    if not rest.startswith("//"):
        raise ChannelConfigError(
            f"{scheme} URL must start with {scheme}:// (e.g. {SCHEMES.get(scheme, '')})"
        )
    rest = rest[2:]
    if _BAD_ESCAPE.search(rest):
        raise ChannelConfigError(
            f"{scheme} URL has a '%' that is not a percent-escape: "
            f"{_hint('%')} (or fix the escape, e.g. %23 for '#')"
        )
    return scheme, subscheme, rest


def _split_rest(scheme: str, rest: str) -> tuple[str, str, str]:
    """(authority, path, query), refusing a '#' that Go would silently cut at."""
    # Go's net/url: the authority ends at the first '/', '?' or '#'.
    end = len(rest)
    for sep in "/?#":
        pos = rest.find(sep)
        if pos != -1:
            end = min(end, pos)
    authority, tail = rest[:end], rest[end:]
    if "#" in tail:
        before, _, after = tail.partition("#")
        where = "the query" if "?" in before else "the path"
        if "@" in after or ("@" not in authority and "@" in before):
            where = "the credentials"
        what = {
            "the credentials": "in the user name or password",
            "the query": "in query values (e.g. a room alias: rooms=%23alias:server)",
            "the path": "in the path",
        }[where]
        raise ChannelConfigError(
            f"{scheme} URL has a '#' in {where}, which would cut the URL short: {_hint('#')} {what}"
        )
    path_part, _, query_part = tail.partition("?")
    if "@" in path_part and "@" not in authority and scheme not in TARGET_PATH_SCHEMES:
        raise ChannelConfigError(
            f"{scheme} URL has '@' after a '/': the credentials contain a '/' or '?' - "
            f"{_hint('/')} and {_hint('?')} in the user name and password"
        )
    return authority, path_part, query_part


def _credentials(scheme: str, authority: str) -> tuple[str | None, str | None, str]:
    """(user, password, host[:port]) of an authority, split at its last '@'."""
    if "@" not in authority:
        return None, None, authority
    userinfo, _, hostport = authority.rpartition("@")
    if "@" in userinfo:
        raise ChannelConfigError(
            f"{scheme} URL has more than one '@' before the host: {_hint('@')} "
            "in the user name and password"
        )
    raw_user, colon, raw_password = userinfo.partition(":")
    return unquote(raw_user), unquote(raw_password) if colon else None, hostport


def _split_host(scheme: str, hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        close = hostport.find("]")
        if close == -1:
            raise ChannelConfigError(f"{scheme} URL has an unclosed '[' in the host")
        host, after = hostport[: close + 1], hostport[close + 1 :]
        port_text = after[1:] if after.startswith(":") else ""
    else:
        host, _, port_text = hostport.partition(":")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ChannelConfigError(
                f"{scheme} URL: the port after the host is not a number from 1 to 65535; "
                "if a ':' belongs to a password, put the credentials before '@' and "
                f"{_hint(':')} where needed"
            )
        return unquote(host), int(port_text)
    return unquote(host), None
