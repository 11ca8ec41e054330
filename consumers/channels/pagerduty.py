"""``pagerduty``: PagerDuty Events API v2, ``pagerduty://[host[:port]]/INTEGRATION_KEY``.

An alert's notification (``Message.alert``) follows the alert: ``trigger`` on
a raise (and a repeat), ``acknowledge`` and ``resolve`` on those transitions,
all with ``dedup_key`` = ``team:key`` (the alert's ``dedup_key``), so
PagerDuty's incident opens, quiets and closes with the eventbus alert. Any
other notification is a ``trigger`` (or the URL's ``action``) whose
``dedup_key`` is the event id (or the URL's ``dedup_key``), so a redelivery
updates the same alert instead of opening another. ``payload.severity``
follows the envelope's effective severity (an alert's: the highest seen;
debug and info -> info, warning, error, critical) unless the URL sets
``severity``; ``payload.custom_details`` is the envelope itself.

Query keys (shoutrrr's): ``severity``, ``source`` (default: the resource,
``type:id``), ``action``, ``dedup_key``, ``details`` (JSON, added to the
custom details), ``contexts`` (a JSON array of ``link`` / ``image`` objects or
shoutrrr's ``link:URL,image:URL``; sent as v2 ``links`` / ``images``),
``client``, ``client_url``.

The URL's ``action`` applies to plain events only (as in shoutrrr, e.g. a
channel that resolves the incident ``dedup_key`` names); ``config check``
warns about ``action=acknowledge|resolve`` without a ``dedup_key``, which
would target the event id, an incident nobody opened.

PagerDuty answers 202 when it accepted the event, 400 for an invalid one
(with the reasons in ``errors``) and 429 when the integration key is over
its limit (120 events a minute).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from typing import Any, Final

import httpx

from eventbus.envelope import Severity
from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._http import HttpChannel, PlannedRequest, provider_result
from ._options import Options, base_url, channel_url, timeout_of
from .base import AlertNotice, ChannelDeps, Message, SendResult
from .urls import ParsedURL, parse_url

__all__ = [
    "ACTIONS",
    "DEFAULT_HOST",
    "SEVERITIES",
    "PagerDutyChannel",
    "alert_action",
    "create",
    "dedup_key_of",
    "warnings",
]

DEFAULT_HOST: Final = "events.pagerduty.com"
ACTIONS: Final = ("trigger", "acknowledge", "resolve")
SEVERITIES: Final = ("info", "warning", "error", "critical")
SUMMARY_MAX: Final = 1024
DEDUP_KEY_MAX: Final = 255
_URL_KEYS: Final = (
    "severity", "source", "action", "dedup_key", "details", "contexts", "client", "client_url",
)  # fmt: skip
_KEY = re.compile(r"^[a-fA-F0-9]{32}$")
SEVERITY_NAMES: Final = frozenset(level.value for level in Severity)
_LEVELS: Final = {
    Severity.DEBUG: "info",
    Severity.INFO: "info",
    Severity.WARNING: "warning",
    Severity.ERROR: "error",
    Severity.CRITICAL: "critical",
}
_EXAMPLE = "pagerduty:///INTEGRATION_KEY (32 hex digits)"
# What each alert transition tells PagerDuty (a touch only when notify_on lists it).
_TRANSITIONS: Final = {
    "raised": "trigger",
    "touched": "trigger",
    "repeat": "trigger",
    "acknowledged": "acknowledge",
    "resolved": "resolve",
}


def alert_action(alert: AlertNotice) -> str:
    """The Events API ``event_action`` of an alert transition."""
    return _TRANSITIONS.get(alert.transition, "trigger")


def dedup_key_of(alert: AlertNotice) -> str:
    """``team:key``, or when longer than PagerDuty's 255 characters its head and
    a digest of the whole (still one key per alert, never a collision by cut)."""
    key = alert.dedup_key
    if len(key) <= DEDUP_KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: DEDUP_KEY_MAX - 65]}#{digest}"


class PagerDutyChannel(HttpChannel):
    type = "pagerduty"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        routing_key: str,
        endpoint: str,
        severity: str | None = None,
        source: str | None = None,
        dedup_key: str | None = None,
        action: str = "trigger",
        details: Any = None,
        links: list[dict[str, str]] | None = None,
        images: list[dict[str, str]] | None = None,
        client: str | None = None,
        client_url: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [routing_key])
        self._routing_key = routing_key
        self.endpoint = endpoint
        self.severity = severity
        self.source = source
        self.dedup_key = dedup_key
        self.action = action
        self._details = details
        self._links = links or []
        self._images = images or []
        self._client = client
        self._client_url = client_url

    def describe(self) -> str:
        return f"pagerduty {self.endpoint} integration ***"

    def plan(self, message: Message) -> list[PlannedRequest]:
        alert = message.alert
        if alert is None:
            return [self.request(self.event_body(message, action=self.action))]
        body = self.event_body(message, action=alert_action(alert), dedup_key=dedup_key_of(alert))
        return [self.request(body)]

    def request(self, body: dict[str, Any]) -> PlannedRequest:
        return PlannedRequest(
            "POST",
            self.endpoint,
            headers={"Content-Type": "application/json"},
            json=body,
            secrets=self._secrets,
        )

    def event_body(
        self, message: Message, *, action: str = "trigger", dedup_key: str | None = None
    ) -> dict[str, Any]:
        """The Events API v2 body for ``message``: a trigger, or an acknowledge or
        resolve of the alert ``dedup_key`` (default: the URL's, else the event id)."""
        event, alert = message.event, message.alert
        key = dedup_key or self.dedup_key or event.id
        body: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": action,
            "dedup_key": key[:DEDUP_KEY_MAX],
        }
        if action != "trigger":
            return body
        envelope = event.model_dump(mode="json", exclude_none=True)
        details = envelope if self._details is None else {**envelope, "details": self._details}
        # An alert's incident keeps the title it was raised with, and its severity
        # is the highest seen (a repeat must not read "STILL FIRING ...").
        summary = alert.summary if alert is not None and alert.summary else message.title
        level = event.level
        if alert is not None and alert.severity in SEVERITY_NAMES:
            level = Severity(alert.severity)
        body["payload"] = {
            "summary": summary[:SUMMARY_MAX],
            "source": self.source or f"{event.resource.type}:{event.resource.id}",
            "severity": self.severity or _LEVELS[level],
            "timestamp": envelope["timestamp"],
            "component": event.resource.type,
            "group": event.team_id,
            "class": event.event,
            "custom_details": details,
        }
        links = list(self._links)
        if message.link:
            links.insert(0, {"href": message.link, "text": message.title[:SUMMARY_MAX]})
        if links:
            body["links"] = links
        if self._images:
            body["images"] = self._images
        if self._client:
            body["client"] = self._client
        if self._client_url:
            body["client_url"] = self._client_url
        return body

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
        if not isinstance(answer, dict):
            return result
        reasons = [str(answer[k]) for k in ("message", "error") if answer.get(k)]
        errors = answer.get("errors")
        if isinstance(errors, list):
            reasons += [str(item) for item in errors]
        if not reasons:
            return result
        return replace(result, error=f"{result.error}: pagerduty says {'; '.join(reasons)[:300]}")


def _contexts(value: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(links, images) from ``contexts``: a JSON array, or ``link:URL,image:URL``."""
    try:
        items = json.loads(value)
    except ValueError:
        items = None
    if not isinstance(items, list):
        items = []
        for part in (p.strip() for p in value.split(",")):
            kind, colon, target = (s.strip() for s in part.partition(":"))
            if not part or kind == "text":
                continue  # shoutrrr skips text contexts
            if not colon or not kind or not target:
                raise ChannelConfigError(
                    f"pagerduty contexts item {part!r} is not type:value (link:URL or image:URL)"
                )
            items.append({"type": kind, "href" if kind == "link" else "src": target})
    links: list[dict[str, str]] = []
    images: list[dict[str, str]] = []
    for item in items:
        shape = item.get("type") if isinstance(item, dict) else None
        if shape == "link" and item.get("href"):
            links.append({k: str(item[k]) for k in ("href", "text") if item.get(k)})
        elif shape == "image" and item.get("src"):
            images.append(
                {
                    k if k != "text" else "alt": str(item[k])
                    for k in ("src", "href", "text")
                    if item.get(k)
                }
            )
        else:
            raise ChannelConfigError(
                f"pagerduty contexts item {json.dumps(item)[:80]} is not a link with href "
                "or an image with src"
            )
    return links, images


def _choice(url: ParsedURL, key: str, allowed: tuple[str, ...]) -> str | None:
    value = url.get(key)
    if not value:
        return None
    if value not in allowed:
        raise ChannelConfigError(
            f"pagerduty URL: {key} {value!r} is not valid: use one of {', '.join(allowed)}"
        )
    return value


def _details(value: str | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise ChannelConfigError(
            'pagerduty URL: details is not JSON: write details={"key":"value"} (percent-encoded)'
        ) from None


def _endpoint(url: ParsedURL, api_base: str | None) -> str:
    port = f":{url.port}" if url.port and url.port != 443 else ""
    default = f"https://{url.host or DEFAULT_HOST}{port}"
    return base_url(api_base, default) + "/v2/enqueue"


def create(spec: ChannelSpec, deps: ChannelDeps) -> PagerDutyChannel:
    opts = Options(spec, "pagerduty")
    api_base = opts.string("api_base")
    opts.done()
    url = channel_url(spec, "pagerduty")
    assert url is not None
    url.check_keys(_URL_KEYS)
    if not url.path:
        raise ChannelConfigError(f"pagerduty URL has no integration key: write {_EXAMPLE}")
    if len(url.path) != 1 or not _KEY.match(url.path[0]):
        raise ChannelConfigError(
            "pagerduty integration key (the path) is not 32 hex digits: use the Events API v2 "
            "integration key of the service, not an API key"
        )
    links, images = _contexts(url.get("contexts") or "")
    return PagerDutyChannel(
        spec.name,
        deps.http,
        routing_key=url.path[0],
        endpoint=_endpoint(url, api_base),
        severity=_choice(url, "severity", SEVERITIES),
        source=url.get("source") or None,
        dedup_key=url.get("dedup_key") or None,
        action=_choice(url, "action", ACTIONS) or "trigger",
        details=_details(url.get("details")),
        links=links,
        images=images,
        client=url.get("client") or None,
        client_url=url.get("client_url") or None,
        timeout=timeout_of(spec, deps),
    )


def warnings(spec: ChannelSpec) -> list[str]:
    """``action=acknowledge|resolve`` without ``dedup_key`` targets nothing."""
    if spec.url is None:
        return []
    try:
        url = parse_url(spec.url.get_secret_value(), schemes=["pagerduty"])
    except ChannelConfigError:
        return []
    action = url.get("action")
    if action in (None, "", "trigger") or url.get("dedup_key"):
        return []
    return [
        f"pagerduty channel {spec.name!r}: action={action} without dedup_key: each plain "
        f"event would {action} the incident of its own event id, which nothing opened; set "
        "dedup_key=... to name the incident, or publish alert events (--alert-key), whose "
        "acknowledge and resolve reach PagerDuty by themselves"
    ]
