"""``teams``: a Power Automate workflow ("Post to a channel when a webhook
request is received"), ``teams://?host=<percent-encoded workflow URL>``.

The old Office 365 connector format is retired, so the message is an
Adaptive Card. The workflow URL's ``sig`` query parameter is its secret.
The title carries the severity tag (``[ERROR]``...) and its colour follows
the severity unless the URL's ``color=`` fixes it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._compat import CARD_COLORS
from ._format import headline, severity_look
from ._http import HttpChannel, PlannedRequest
from ._options import Options, timeout_of
from .base import ChannelDeps, Message
from .urls import parse_url

__all__ = ["TeamsChannel", "adaptive_card", "create"]

_URL_KEYS = ("host", "title", "color")


def adaptive_card(title: str, body: str, link: str | None, color: str) -> dict[str, Any]:
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": color,
            },
            {"type": "TextBlock", "text": body, "wrap": True},
        ],
    }
    if link:
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": link}]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": content,
            }
        ],
    }


class TeamsChannel(HttpChannel):
    type = "teams"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        workflow_url: str,
        title_prefix: str = "",
        color: str | None = None,
        timeout: float = 15.0,
        secrets: list[str],
    ) -> None:
        super().__init__(name, http, timeout, [workflow_url, *secrets])
        self._workflow_url = workflow_url
        self._title_prefix = title_prefix
        self._color = color

    def describe(self) -> str:
        parts = urlsplit(self._workflow_url)
        return f"teams workflow {parts.scheme}://{parts.netloc}{parts.path}"

    def plan(self, message: Message) -> list[PlannedRequest]:
        title = headline(message, self._title_prefix)
        # Adaptive Card TextBlocks take Markdown, where a single newline is not a break.
        body = message.body.replace("\n", "\n\n")
        card = adaptive_card(
            title, body, message.link, self._color or severity_look(message).teams_color
        )
        return [
            PlannedRequest(
                "POST",
                self._workflow_url,
                headers={"Content-Type": "application/json"},
                json=card,
                secrets=self._secrets,
            )
        ]


def card_color(value: str | None) -> str | None:
    """shoutrrr's colour names (teams_service.go) as Adaptive Card colours; others are
    "default" (``urls verify`` and ``config check`` warn)."""
    if not value:
        return None
    card = CARD_COLORS.get(value.strip().lower(), "default")
    # an Adaptive Card name is kept as written (Teams reads "Good" and "good" alike)
    return value.strip() if card == value.strip().lower() else card


def create(spec: ChannelSpec, deps: ChannelDeps) -> TeamsChannel:
    opts = Options(spec, "teams")
    workflow = opts.secret("workflow_url")
    opts.done()
    title, color = "", None
    if spec.url is not None:
        url = parse_url(spec.url.get_secret_value(), schemes=["teams"])
        if {"sig", "sp", "sv", "api-version"} & set(url.query):
            raise ChannelConfigError(
                "teams URL: the workflow URL in host= is not percent-encoded, so its own query "
                "(api-version, sp, sv, sig) was split off; encode it ('?' as %3F, '&' as %26)"
            )
        url.check_keys(_URL_KEYS)
        workflow = workflow or url.get("host")
        title = url.get("title") or ""
        color = card_color(url.get("color"))
        if url.host or url.user:
            raise ChannelConfigError(
                "this teams URL looks like the retired Office 365 connector format; create a "
                "Power Automate workflow and use teams://?host=<percent-encoded workflow URL>"
            )
    if not workflow:
        raise ChannelConfigError(
            "teams channel has no workflow URL: use teams://?host=<percent-encoded workflow URL> "
            "or the option workflow_url"
        )
    parts = urlsplit(workflow)
    if parts.scheme != "https" or not parts.hostname:
        raise ChannelConfigError(
            "teams workflow URL must be an https URL (copy it from the Power Automate trigger); "
            "in a teams:// URL, percent-encode it (':' as %3A, '/' as %2F, '?' as %3F, '&' as %26)"
        )
    secrets = [v for k, v in parse_qsl(parts.query) if k.lower() in {"sig", "code", "key"}]
    return TeamsChannel(
        spec.name,
        deps.http,
        workflow_url=workflow,
        title_prefix=title,
        color=color,
        timeout=timeout_of(spec, deps),
        secrets=secrets,
    )
