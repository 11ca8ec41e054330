"""Apprise URLs of the common services, read as the shoutrrr URL they mean.

Apprise (caronc/apprise) lays out the same services differently:
``tgram://BOT_TOKEN/CHAT``, ``discord://WEBHOOK_ID/TOKEN``,
``pover://USER_KEY@TOKEN``, ``mailtos://user:pass@example.com``,
``matrixs://user:pass@host/#room`` and so on (the ``templates`` of each
``apprise/plugins/*.py``). ``translate`` rewrites such a URL as the shoutrrr
URL eventbus reads, so an operator coming from Apprise can paste theirs;
``eventbus urls verify`` shows which form it was read as.

Where a scheme means different things in the two projects, shoutrrr wins
when the URL fits its layout: ``gotify://``, ``ntfy://HOST/TOPIC`` and
``matrix://...?rooms=`` are https in shoutrrr and stay so (Apprise's
``gotifys://``, ``ntfys://``, ``matrixs://`` mean the same). A query key
with no shoutrrr equivalent is refused by name rather than dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, quote, unquote, urlencode

from eventbus.errors import ChannelConfigError

__all__ = ["APPRISE_SCHEMES", "translate"]

# Apprise scheme -> the eventbus channel type it selects (shared schemes,
# discord:// slack:// ntfy:// gotify:// matrix://, are already types).
APPRISE_SCHEMES: Final = {
    "tgram": "telegram",
    "mailto": "smtp",
    "mailtos": "smtp",
    "ntfys": "ntfy",
    "gotifys": "gotify",
    "pover": "pushover",
    "matrixs": "matrix",
    "mmost": "mattermost",
    "mmosts": "mattermost",
    "workflow": "teams",
    "workflows": "teams",
    "msteams": "teams",  # only to say what replaced it
}


# an ntfy topic name: a bare word (a host has a dot, a port or credentials)
_TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")


@dataclass(frozen=True, slots=True)
class _Parts:
    scheme: str
    user: str | None
    password: str | None
    host: str
    port: str
    path: list[str]
    query: dict[str, str]

    def netloc(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host

    def take(self, *keys: str) -> str | None:
        """The value of the first of ``keys`` present (removed from the query)."""
        found = None
        for key in keys:
            value = self.query.pop(key, None)
            if value is not None and found is None:
                found = value
        return found

    def done(self) -> None:
        if self.query:
            raise ChannelConfigError(
                f"Apprise {self.scheme}:// URL: option(s) "
                f"{', '.join(map(repr, sorted(self.query)))} have no eventbus equivalent; "
                "remove them (see eventbus urls verify for the shoutrrr form)"
            )


def _split(scheme: str, rest: str) -> _Parts:
    """Apprise's URL parts; a '#' is part of a channel or room name, not a fragment."""
    rest = rest.replace("#", "%23")
    rest, _, query_text = rest.partition("?")
    authority, _, path_text = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    user = password = None
    if at:
        raw_user, colon, raw_password = userinfo.partition(":")
        user = unquote(raw_user) or None
        password = unquote(raw_password) if colon and raw_password else None
    host, _, port = hostport.partition(":")
    if port and not port.isdigit():
        raise ChannelConfigError(f"Apprise {scheme}:// URL: the port {port[:10]!r} is not a number")
    query = {key.lower(): value for key, value in parse_qsl(query_text, keep_blank_values=True)}
    path = [unquote(segment) for segment in path_text.split("/") if segment]
    return _Parts(scheme, user, password, unquote(host), port, path, query)


def _q(value: str) -> str:
    return quote(value, safe="")


def _targets(parts: _Parts) -> list[str]:
    extra = parts.take("to") or ""
    return [*parts.path, *(item.strip() for item in extra.split(",") if item.strip())]


def _telegram(parts: _Parts, token: str) -> str:
    bot, colon, secret = token.partition(":")
    if not colon:
        raise ChannelConfigError("Apprise tgram:// URL: the bot token must look like 123456:ABC...")
    query: dict[str, str] = {"chats": ",".join(_targets(parts))}
    mode = (parts.take("format") or "").lower()
    if mode:
        query["parsemode"] = {"html": "HTML", "markdown": "MarkdownV2", "text": "None"}.get(
            mode, mode
        )
    parts.take("mdv")
    silent = parts.take("silent")
    if silent is not None:
        query["notification"] = "no" if silent.lower() in {"yes", "true", "1"} else "yes"
    preview = parts.take("preview")
    if preview is not None:
        query["preview"] = preview
    parts.done()
    return f"telegram://{_q(bot)}:{_q(secret)}@telegram?{urlencode(query)}"


def _tgram(parts: _Parts, raw_authority: str) -> str:
    # The bot token holds a ':' that is no port: the whole authority is the token.
    return _telegram(parts, unquote(raw_authority))


def _discord(parts: _Parts) -> str:
    if len(parts.path) != 1:
        raise ChannelConfigError(
            "Apprise discord:// URL must be discord://WEBHOOK_ID/WEBHOOK_TOKEN"
        )
    query: dict[str, str] = {}
    if parts.user:
        query["username"] = parts.user
    for apprise_key, key in (("avatar_url", "avatar"), ("thread", "thread_id")):
        value = parts.take(apprise_key)
        if value:
            query[key] = value
    parts.take("format")
    parts.done()
    tail = f"?{urlencode(query)}" if query else ""
    return f"discord://{_q(parts.path[0])}@{parts.host}{tail}"


def _slack(parts: _Parts) -> str:
    bot = parts.host.lower().startswith("xox")
    tokens = [] if bot else [parts.host, *parts.path[:2]]
    path = parts.path if bot else parts.path[2:]
    extra = (parts.take("to") or "").split(",")
    targets = [target.strip().lstrip("#") for target in [*path, *extra] if target.strip()]
    if len(targets) > 1:
        raise ChannelConfigError(
            "Apprise slack:// URL names several channels: eventbus sends one channel per "
            "URL, so write one URL per channel"
        )
    botname = parts.user
    query = {"botname": botname} if botname else {}
    tail = f"?{urlencode(query)}" if query else ""
    if bot:
        kind, _, secret = parts.host.partition("-")
        if not targets:
            raise ChannelConfigError("Apprise slack:// bot URL needs a channel: .../#channel")
        parts.done()
        return f"slack://{_q(kind)}:{_q(secret)}@{_q(targets[0])}{tail}"
    if targets:
        raise ChannelConfigError(
            "Apprise slack://A/B/C/#channel: a Slack incoming webhook always posts to its own "
            "channel; drop the channel, or use a bot token (slack://xoxb:TOKEN@CHANNEL)"
        )
    parts.done()
    return f"slack://hook:{_q('-'.join(tokens))}@webhook{tail}"


def _ntfy(parts: _Parts, secure: bool) -> str:
    host, topics = parts.netloc(), parts.path
    if not topics:  # ntfy://TOPIC: a topic on ntfy.sh
        host, topics = "ntfy.sh", [parts.host]
    if len(topics) != 1:
        raise ChannelConfigError("Apprise ntfy URL names several topics: write one URL per topic")
    auth = ""
    if parts.user and parts.password:
        auth = f"{_q(parts.user)}:{_q(parts.password)}@"
    elif parts.user or parts.password:  # an access token
        auth = f":{_q(parts.user or parts.password or '')}@"
    query = {"scheme": "https" if secure else "http"}
    for key in ("priority", "tags", "click", "delay", "email", "attach", "filename"):
        value = parts.take(key)
        if value:
            query[key] = value
    icon = parts.take("avatar_url")
    if icon:
        query["icon"] = icon
    parts.take("auth")
    parts.done()
    return f"ntfy://{auth}{host}/{_q(topics[0])}?{urlencode(query)}"


def _gotify(parts: _Parts) -> str:
    query = {}
    priority = parts.take("priority")
    if priority:
        query["priority"] = priority
    parts.done()
    path = "/".join(_q(segment) for segment in parts.path)
    return f"gotify://{parts.netloc()}/{path}" + (f"?{urlencode(query)}" if query else "")


def _pover(parts: _Parts) -> str:
    if not parts.user:
        raise ChannelConfigError("Apprise pover:// URL must be pover://USER_KEY@API_TOKEN")
    query = {}
    devices = [target for target in _targets(parts) if not target.startswith("#")]
    if devices:
        query["devices"] = ",".join(devices)
    for key in ("priority", "title"):
        value = parts.take(key)
        if value:
            query[key] = value
    parts.done()
    tail = f"?{urlencode(query)}" if query else ""
    return f"pushover://shoutrrr:{_q(parts.host)}@{_q(parts.user)}/{tail}"


def _matrix(parts: _Parts, secure: bool) -> str:
    if not parts.host or not parts.user:
        raise ChannelConfigError(
            "Apprise matrix URL must be matrixs://user:password@host/#room "
            "or matrixs://TOKEN@host/#room (t2bot and webhook modes are not supported)"
        )
    rooms = [room if ":" in room else f"{room}:{parts.host}" for room in _targets(parts)]
    auth = f"{_q(parts.user)}:{_q(parts.password)}" if parts.password else f":{_q(parts.user)}"
    query = {"rooms": ",".join(rooms)}
    if not secure:
        query["disabletls"] = "yes"
    parts.take("mode", "v", "msgtype", "format")
    parts.done()
    return f"matrix://{auth}@{parts.netloc()}/?{urlencode(query)}"


def _mattermost(parts: _Parts, secure: bool) -> str:
    if len(parts.path) != 1:
        raise ChannelConfigError(
            "Apprise mattermost URL must be mmosts://[botname@]host[:port]/TOKEN "
            "(a server under a sub-path is not supported)"
        )
    named = ",".join(v for v in (parts.take("to"), parts.take("channel", "channels")) if v)
    channels = [c.strip().lstrip("#") for c in named.split(",") if c.strip()]
    if len(channels) > 1:
        raise ChannelConfigError("Apprise mmost URL names several channels: one URL per channel")
    user = parts.take("botname") or parts.user
    parts.done()
    path = "/".join(_q(segment) for segment in [parts.path[0], *channels])
    tail = "" if secure else "?disabletls=yes"
    return f"mattermost://{_q(user) + '@' if user else ''}{parts.netloc()}/{path}{tail}"


def _workflow(parts: _Parts) -> str:
    if len(parts.path) != 2:
        raise ChannelConfigError(
            "Apprise workflow:// URL must be workflow://HOST[:PORT]/WORKFLOW_ID/SIGNATURE"
        )
    workflow, signature = parts.path
    prefix = ""
    power_automate = (parts.take("pa", "powerautomate") or "").lower() in {"yes", "true", "1"}
    route = parts.take("route", "routeid")
    if power_automate:
        prefix = "/powerautomate/automations/direct" + (f"/cu/{route}" if route else "")
    version = parts.take("ver", "api-version") or "2016-06-01"
    parts.take("image", "wrap")
    parts.done()
    query = urlencode(
        {"api-version": version, "sp": "/triggers/manual/run", "sv": "1.0", "sig": signature}
    )
    target = (
        f"https://{parts.netloc()}{prefix}/workflows/{_q(workflow)}/triggers/manual/paths/invoke"
        f"?{query}"
    )
    return f"teams://?host={_q(target)}"


def _mail(parts: _Parts, secure: bool) -> str:
    user = parts.take("user") or parts.user
    password = parts.take("pass") or parts.password
    server = parts.take("smtp") or parts.host
    sender = parts.take("from")
    if not sender:
        if not user:
            raise ChannelConfigError("Apprise mailto URL needs a sender: add ?from=you@example.com")
        sender = user if "@" in user else f"{user}@{parts.host}"
    recipients = _targets(parts) or [sender]
    mode = (parts.take("mode") or ("starttls" if secure else "insecure")).lower()
    encryption = {"ssl": "ImplicitTLS", "starttls": "ExplicitTLS", "insecure": "None"}.get(mode)
    if encryption is None:
        raise ChannelConfigError(f"Apprise mailto mode {mode!r}: use ssl, starttls or insecure")
    port = parts.port or {"ImplicitTLS": "465", "ExplicitTLS": "587"}.get(encryption, "25")
    query = {"fromaddress": sender, "toaddresses": ",".join(recipients), "encryption": encryption}
    name = parts.take("name")
    if name:
        query["fromname"] = name
    parts.done()
    auth = ""
    if user:
        auth = _q(user) + (f":{_q(password)}" if password else "") + "@"
    return f"smtp://{auth}{server}:{port}/?{urlencode(query)}"


def translate(scheme: str, rest: str) -> str | None:
    """The shoutrrr URL an Apprise URL (``scheme://rest``) means, or None if it is not one."""
    scheme = scheme.lower()
    if scheme == "msteams":
        raise ChannelConfigError(
            "msteams:// is Apprise's Office 365 connector form, which Microsoft retired: "
            "create a Power Automate workflow and use workflow://HOST/WORKFLOW_ID/SIGNATURE "
            "or teams://?host=<percent-encoded workflow URL>"
        )
    if scheme == "tgram":
        body, mark, query = rest.partition("?")
        authority, _, tail = body.partition("/")
        parts = _split(scheme, f"x/{tail}{mark}{query}")
        return _tgram(parts, authority.rpartition("@")[2])
    if scheme not in APPRISE_SCHEMES and not _shared_apprise_layout(scheme, rest):
        return None
    parts = _split(scheme, rest)
    if scheme == "discord":
        return _discord(parts)
    if scheme == "slack":
        return _slack(parts)
    if scheme in {"ntfy", "ntfys"}:
        return _ntfy(parts, secure=scheme == "ntfys" or not parts.path)
    if scheme == "gotifys":
        return _gotify(parts)
    if scheme == "pover":
        return _pover(parts)
    if scheme in {"matrix", "matrixs"}:
        return _matrix(parts, secure=scheme == "matrixs")
    if scheme in {"mmost", "mmosts"}:
        return _mattermost(parts, secure=scheme == "mmosts")
    if scheme in {"workflow", "workflows"}:
        return _workflow(parts)
    return _mail(parts, secure=scheme == "mailtos")


def _shared_apprise_layout(scheme: str, rest: str) -> bool:
    """A discord/slack/ntfy/matrix URL laid out as Apprise's (shoutrrr's are read as such)."""
    body = rest.partition("?")[0]
    authority, _, tail = body.partition("/")
    path = [s for s in tail.split("/") if s]
    if scheme == "discord":
        # shoutrrr: discord://TOKEN@ID[/raw]; Apprise: discord://[NAME@]ID/TOKEN, where a
        # webhook token is long (68 characters) and the id a number
        host = authority.rpartition("@")[2]
        return len(path) == 1 and len(path[0]) >= 32 and host.isdigit()
    if scheme == "slack":  # shoutrrr: slack://[botname@]A/B/C (no channel), tokens in userinfo
        host = authority.rpartition("@")[2].lower()
        return host.startswith("xox") or len(path) >= 3
    if scheme == "ntfy":  # shoutrrr needs a topic path: ntfy://TOPIC is Apprise's ntfy.sh
        return not path and _TOPIC.match(authority.partition("?")[0]) is not None
    if scheme == "matrix":  # shoutrrr names rooms in ?rooms=, never in the path
        return bool(path) or "#" in body
    return False
