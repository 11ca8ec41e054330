"""``opsgenie``: Opsgenie Alert API, ``opsgenie://api.opsgenie.com/API_KEY``.

Each notification creates an alert (``POST /v2/alerts`` with ``GenieKey``
auth) whose ``alias`` is the event id unless the URL sets one, so a
redelivery is deduplicated by Opsgenie. An alert's notification
(``Message.alert``) follows the alert instead, on the alias ``team:key`` (its
``dedup_key``): a raise (or repeat) creates it, an acknowledgement is
``POST /v2/alerts/{alias}/acknowledge?identifierType=alias`` and a resolve
``POST /v2/alerts/{alias}/close?identifierType=alias``, each with ``source``,
``user`` and a ``note`` saying what happened. EU instances use
``opsgenie://api.eu.opsgenie.com/API_KEY``; an empty host means
``api.opsgenie.com``.

Query keys (shoutrrr's): ``alias``, ``description`` (appended to the
notification body), ``responders`` and ``visibleTo`` (``team:NOC,user:a@b.c``,
or an id: ``team:4513b7ea-...``; a JSON array of Opsgenie objects works too),
``actions`` and ``tags`` (comma-separated or a JSON array), ``details``
(``key:value,...`` or a JSON object), ``entity`` (default: the resource,
``type:id``), ``source``, ``priority`` (P1-P5; default from the severity:
critical P1, error P2, warning P3, info P4, debug P5), ``user``, ``note``,
``title`` (the alert message instead of the notification title).

Opsgenie answers 202 for an accepted request, 401 for a bad key, 422 for an
invalid alert and 429 when the account is over its rate limit.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any, Final
from urllib.parse import quote

import httpx

from eventbus.envelope import Severity
from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, base_url, channel_url, timeout_of
from .base import AlertNotice, ChannelDeps, Message, SendResult
from .urls import ParsedURL, split_list

__all__ = ["DEFAULT_HOST", "OpsgenieChannel", "create", "parse_entities"]

# Opsgenie's verbs for the alert transitions that are not a create.
_ACTIONS: Final = {"acknowledged": "acknowledge", "resolved": "close"}

DEFAULT_HOST: Final = "api.opsgenie.com"
# Opsgenie's field limits (Alert API, create alert)
MESSAGE_MAX: Final = 130
DESCRIPTION_MAX: Final = 15000
ALIAS_MAX: Final = 512
NOTE_MAX: Final = 25000
_URL_KEYS: Final = (
    "alias", "description", "responders", "visibleto", "actions", "tags", "details",
    "entity", "source", "priority", "user", "note", "title",
)  # fmt: skip
_PRIORITIES: Final = ("P1", "P2", "P3", "P4", "P5")
_LEVELS: Final = {
    Severity.CRITICAL: "P1",
    Severity.ERROR: "P2",
    Severity.WARNING: "P3",
    Severity.INFO: "P4",
    Severity.DEBUG: "P5",
}
_LEVEL_NAMES: Final = frozenset(level.value for level in Severity)
# an Opsgenie id, as shoutrrr recognises one (pkg/services/incident/opsgenie/opsgenie_entity.go)
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TEXT_FIELDS: Final = ("entity", "source", "user", "note")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class OpsgenieChannel(HttpChannel):
    type = "opsgenie"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        endpoint: str,
        fields: dict[str, Any] | None = None,
        description: str = "",
        title: str = "",
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [api_key])
        self._api_key = api_key
        self.endpoint = endpoint
        self.fields = fields or {}
        self._description = description
        self._title = title

    def describe(self) -> str:
        return f"opsgenie {self.endpoint} key ***"

    def alert_body(self, message: Message, *, alias: str | None = None) -> dict[str, Any]:
        """The create-alert body for ``message``, deduplicated on ``alias``
        (default: the URL's, else the event id)."""
        event, alert = message.event, message.alert
        description = message.body
        if self._description:
            description = (
                f"{description}\n{self._description}" if description else self._description
            )
        # An alert keeps the title it was raised with (a repeat is not "STILL FIRING").
        title = alert.summary if alert is not None and alert.summary else message.title
        body: dict[str, Any] = {
            "message": _cut(self._title or title, MESSAGE_MAX),
            "alias": (alias or self.fields.get("alias") or event.id)[:ALIAS_MAX],
        }
        if description:
            body["description"] = _cut(description, DESCRIPTION_MAX)
        body.update({k: v for k, v in self.fields.items() if k != "alias"})
        body.setdefault("entity", f"{event.resource.type}:{event.resource.id}")
        level = event.level
        if alert is not None and alert.severity in _LEVEL_NAMES:
            level = Severity(alert.severity)  # the highest seen while firing
        body.setdefault("priority", _LEVELS[level])
        return body

    def plan(self, message: Message) -> list[PlannedRequest]:
        alert = message.alert
        verb = _ACTIONS.get(alert.transition) if alert is not None else None
        if alert is None or verb is None:
            alias = alert.dedup_key if alert is not None else None
            return [self._post(self.endpoint, self.alert_body(message, alias=alias))]
        target = f"{self.endpoint}/{quote(alert.dedup_key[:ALIAS_MAX], safe='')}/{verb}"
        return [self._post(target + "?identifierType=alias", self.action_body(message, alert))]

    def action_body(self, message: Message, alert: AlertNotice) -> dict[str, Any]:
        """The body of an acknowledge or close: who (the acknowledger, else the
        URL's ``user``), from where (``source``, default eventbus) and a note."""
        lead = message.body.split("\n", 1)[0] if message.body else message.title
        note = f"{lead} ({alert.reason})" if alert.reason and alert.reason not in lead else lead
        body: dict[str, Any] = {"source": self.fields.get("source") or "eventbus"}
        user = alert.acknowledged_by if alert.transition == "acknowledged" else None
        user = user or self.fields.get("user")
        if user:
            body["user"] = _cut(user, 100)
        body["note"] = _cut(note, NOTE_MAX)
        return body

    def _post(self, url: str, body: dict[str, Any]) -> PlannedRequest:
        return PlannedRequest(
            "POST",
            url,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"GenieKey {self._api_key}",
            },
            json=body,
            secrets=self._secrets,
        )

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        result = provider_result(response, latency)
        if result.ok:
            return result
        try:
            answer = response.json()
        except ValueError:
            return result
        reason = answer.get("message") if isinstance(answer, dict) else None
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if isinstance(errors, dict) and errors:
            reason = f"{reason or ''} {json.dumps(errors)}".strip()
        if not reason:
            return result
        return replace(result, error=f"{result.error}: opsgenie says {str(reason)[:300]}")


def _json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return None


def parse_entities(value: str | None, key: str) -> list[dict[str, str]]:
    """``team:NOC,user:a@b.c,team:<id>`` (shoutrrr's form) or a JSON array of objects."""
    if not value:
        return []
    if value.lstrip().startswith("["):
        items = _json(value)
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and item.get("type") for item in items
        ):
            raise ChannelConfigError(
                f"opsgenie {key}: write a JSON array of objects with a type, e.g. "
                f'[{{"type":"team","name":"NOC"}}], or team:NOC,user:name'
            )
        return [{k: str(v) for k, v in item.items()} for item in items]
    entities = []
    for item in value.split(","):
        parts = item.split(":")
        if len(parts) != 2:
            raise ChannelConfigError(
                f"opsgenie {key} item {item!r} is not type:identifier (e.g. team:NOC)"
            )
        kind, identifier = parts
        if _ID.match(identifier):
            entities.append({"type": kind, "id": identifier})
        elif kind in ("team", "user"):
            entities.append({"type": kind, "name" if kind == "team" else "username": identifier})
        else:
            raise ChannelConfigError(
                f"opsgenie {key} item {item!r}: a {kind} needs an id; by name, only team "
                "and user work"
            )
    return entities


def _strings(value: str | None, key: str) -> list[str]:
    if value and value.lstrip().startswith("["):
        items = _json(value)
        if not isinstance(items, list):
            raise ChannelConfigError(f'opsgenie {key} is not a JSON array: write ["a","b"] or a,b')
        return [str(item) for item in items]
    return split_list(value)


def _details(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    if value.lstrip().startswith("{"):
        data = _json(value)
        if not isinstance(data, dict):
            raise ChannelConfigError('opsgenie details is not a JSON object: write {"k":"v"}')
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    pairs = [pair.split(":") for pair in value.split(",")]
    if any(len(pair) != 2 for pair in pairs):
        raise ChannelConfigError("opsgenie details must be key:value pairs: write k1:v1,k2:v2")
    return {key: item for key, item in pairs}


def _fields(url: ParsedURL) -> dict[str, Any]:
    priority = url.get("priority")
    if priority and priority not in _PRIORITIES:
        raise ChannelConfigError(f"opsgenie priority {priority!r} is not valid: use P1 to P5")
    found: dict[str, Any] = {
        "alias": url.get("alias"),
        "responders": parse_entities(url.get("responders"), "responders"),
        "visibleTo": parse_entities(url.get("visibleto"), "visibleTo"),
        "actions": _strings(url.get("actions"), "actions"),
        "tags": _strings(url.get("tags"), "tags"),
        "details": _details(url.get("details")),
        "priority": priority,
        **{key: url.get(key) for key in _TEXT_FIELDS},
    }
    return {key: value for key, value in found.items() if value}


def create(spec: ChannelSpec, deps: ChannelDeps) -> OpsgenieChannel:
    opts = Options(spec, "opsgenie")
    api_base = opts.string("api_base")
    opts.done()
    url = channel_url(spec, "opsgenie")
    assert url is not None
    url.check_keys(_URL_KEYS)
    if len(url.path) != 1:
        raise ChannelConfigError(
            "opsgenie URL needs the API key as its path: write opsgenie://api.opsgenie.com/API_KEY "
            "(api.eu.opsgenie.com for EU instances)"
        )
    port = f":{url.port}" if url.port and url.port != 443 else ""
    default = f"https://{url.host or DEFAULT_HOST}{port}"
    return OpsgenieChannel(
        spec.name,
        deps.http,
        api_key=url.path[0],
        endpoint=base_url(api_base, default) + "/v2/alerts",
        fields=_fields(url),
        description=url.get("description") or "",
        title=url.get("title") or "",
        timeout=timeout_of(spec, deps),
    )
