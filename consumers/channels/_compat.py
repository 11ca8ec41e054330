"""What shoutrrr accepts in a service URL beyond the keys a channel reads.

Two tables, by URL scheme:

- ``ALIASES``: the other names shoutrrr's config structs give a query key
  (``key:"chats,channels"`` in ``telegram_config.go``); ``parse_url`` files
  the value under the first name, so a channel reads one key.
- ``UNHONOURED``: keys shoutrrr takes that eventbus cannot act on. A URL
  with one is accepted (it came from a working shoutrrr setup) and
  ``url_warnings`` names it, for ``eventbus urls verify`` and
  ``eventbus config check``: the setting is never dropped in silence.

The source of each entry is the service's ``*_config.go`` in
nicholas-fedor/shoutrrr (``pkg/services/<kind>/<name>/<name>_config.go``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ALIASES",
    "CARD_COLORS",
    "UNHONOURED",
    "Unhonoured",
    "canonical_key",
    "url_warnings",
]

# scheme -> {alias: the key a channel reads}
ALIASES: Final[Mapping[str, Mapping[str, str]]] = {
    "discord": {"avatarurl": "avatar"},
    "slack": {"username": "botname", "icon_emoji": "icon", "icon_url": "icon"},
    "telegram": {"channels": "chats"},
    "smtp": {
        "from": "fromaddress",
        "to": "toaddresses",
        "title": "subject",
        "starttls": "usestarttls",
    },
    "ntfy": {"at": "delay", "in": "delay"},
    "matrix": {"room": "rooms"},
    "pushover": {"key": "encryptionkey"},
    "mattermost": {"icon_emoji": "icon", "icon_url": "icon"},
}

_OFF = frozenset({"", "no", "false", "0", "off", "n"})
_VERIFY = "eventbus always verifies TLS certificates (trust a private CA on the host instead)"
_SEVERITY = "eventbus colours the embed by the event's outcome and severity"


@dataclass(frozen=True, slots=True)
class Unhonoured:
    """A key eventbus accepts but does not act on; ``harmless`` values ask for nothing."""

    reason: str
    harmless: frozenset[str] = frozenset()


UNHONOURED: Final[Mapping[str, Mapping[str, Unhonoured]]] = {
    "discord": {
        "colorerror": Unhonoured(_SEVERITY),
        "colorwarn": Unhonoured(_SEVERITY),
        "colorinfo": Unhonoured(_SEVERITY),
        "colordebug": Unhonoured(_SEVERITY),
        "splitlines": Unhonoured(
            "eventbus sends one embed per message (split only at Discord's size limit)", _OFF
        ),
        "json": Unhonoured(
            "eventbus always sends an embed, not the message text as a raw JSON payload", _OFF
        ),
    },
    "ntfy": {"disabletlsverification": Unhonoured(_VERIFY, _OFF)},
    "gotify": {"insecureskipverify": Unhonoured(_VERIFY, _OFF)},
    "pushover": {
        "encryptionkey": Unhonoured(
            "end-to-end encryption is not implemented: messages go to Pushover unencrypted "
            "(over TLS); remove the key to silence this warning",
            frozenset({""}),
        )
    },
}


# shoutrrr's teams_service.go colorToEnum: colour names -> Adaptive Card colours
CARD_COLORS: Final[Mapping[str, str]] = {
    **dict.fromkeys(("red", "attention", "danger"), "attention"),
    **dict.fromkeys(("orange", "yellow", "warning", "warn"), "warning"),
    **dict.fromkeys(("green", "good", "success"), "good"),
    **dict.fromkeys(("blue", "accent"), "accent"),
    "dark": "dark",
    "light": "light",
    "default": "default",
}
# shoutrrr's teams_validation.go: the hosts a Power Automate workflow URL has
_WORKFLOW_URL = re.compile(
    r"^https://[a-zA-Z0-9][a-zA-Z0-9.-]*\.logic\.azure(?:\.[a-z]{2,})?(:\d+)?/"
    r"(?:powerautomate/automations/direct/(?:[A-Za-z0-9-]+/)*)?workflows/|"
    r"^https://[a-zA-Z0-9][a-zA-Z0-9.-]*\.environment\.api\.powerplatform\.com(:\d+)?/"
    r"powerautomate/automations/direct/(?:[A-Za-z0-9-]+/)*workflows/"
)


def canonical_key(scheme: str, key: str) -> str:
    """The name a channel reads a (lower-cased) query key under."""
    return ALIASES.get(scheme, {}).get(key, key)


def url_warnings(
    scheme: str, pairs: Iterable[tuple[str, str]], path: tuple[str, ...] = ()
) -> list[str]:
    """One sentence per accepted query key (as written) that eventbus will not act on."""
    table = UNHONOURED.get(scheme, {})
    found = []
    query = {}
    for key, value in pairs:
        canonical = canonical_key(scheme, key.lower())
        query[canonical] = value
        entry = table.get(canonical)
        if entry is not None and value.strip().lower() not in entry.harmless:
            found.append(f"{scheme} URL key {key!r} is accepted but not honoured: {entry.reason}")
    found += _value_warnings(scheme, query)
    if scheme == "discord" and path == ("raw",):
        found.append(
            f"{scheme} URL path '/raw' is accepted but not honoured: {table['json'].reason}"
        )
    return found


def _value_warnings(scheme: str, query: Mapping[str, str]) -> list[str]:
    if scheme == "smtp" and query.get("auth", "").strip().lower() == "oauth2":
        return [
            "smtp URL auth=OAuth2 is accepted but not honoured: eventbus logs in with the "
            "password (PLAIN/LOGIN/CRAM-MD5 as the server offers), not XOAUTH2"
        ]
    fields = sorted(key for key in query if key.startswith("$") and len(key) > 1)
    if scheme == "generic" and fields and query.get("template", "").lower() != "json":
        return [
            f"generic URL field(s) {', '.join(map(repr, fields))} are accepted but not "
            "honoured: without template=json the body is plain text (add template=json)"
        ]
    color = query.get("color", "").strip().lower()
    if scheme == "teams" and color and color not in CARD_COLORS:
        return [
            f"teams URL color={query['color']!r} is not an Adaptive Card colour: the title "
            f"uses the default colour (use one of {', '.join(sorted(CARD_COLORS))})"
        ]
    workflow = query.get("host", "")
    if scheme == "teams" and workflow and not _WORKFLOW_URL.match(workflow):
        return [
            "teams workflow URL is not on a Power Automate host (*.logic.azure.com or "
            "*.environment.api.powerplatform.com): shoutrrr would refuse it; check it was "
            "copied from the workflow's trigger"
        ]
    return []
