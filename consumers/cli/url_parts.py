"""The services ``eventbus urls generate`` knows, and where each part goes in their URL.

One ``Service`` per row, each a list of ``Part``s; ``generate`` builds the URL
from them and reads it back (``build_url`` / ``read_parts``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["SERVICES", "Part", "Service"]


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
        Service(
            "signal",
            "signal",
            "Signal through a signal-cli REST API server",
            (
                _optional("user", "Basic auth user name (empty: none)", "user"),
                _optional("password", "Basic auth password", "password", secret=True),
                Part("host", "signal-cli REST API host", "host", default="localhost"),
                Part("port", "Port", "port", default="8080"),
                Part("source", "Sending number (+15551234567)", "path"),
                Part("recipients", "Recipients (+number or group.ID, separated by /)", "segments"),
                _optional("token", "Bearer token (empty: none)", "query", secret=True),
            ),
        ),
        Service(
            "wecom",
            "wecom",
            "WeCom (WeChat Work) group bot",
            (
                Part("key", "Webhook key (the key= of the bot's webhook URL)", "host", True),
                _optional("mentioned_list", "Mention user ids (comma-separated, @all)", "query"),
            ),
        ),
        Service(
            "zulip",
            "zulip",
            "Zulip bot",
            (
                Part("bot_email", "Bot e-mail", "user"),
                Part("api_key", "Bot API key", "password", True),
                Part("host", "Zulip host (example.zulipchat.com)", "host"),
                Part("stream", "Stream", "query"),
                _optional("topic", "Topic (empty: the notification title)", "query"),
            ),
        ),
        Service(
            "pagerduty",
            "pagerduty",
            "PagerDuty Events API v2",
            (
                _optional("host", "Events API host (empty: events.pagerduty.com)", "host"),
                Part("integration_key", "Integration key (32 hex digits)", "path", True),
                _optional("severity", "Severity (empty: the event's)", "query"),
                _optional("source", "Source (empty: the event's resource)", "query"),
            ),
        ),
        Service(
            "opsgenie",
            "opsgenie",
            "Opsgenie alerts",
            (
                Part(
                    "host",
                    "API host (api.eu.opsgenie.com for EU)",
                    "host",
                    default="api.opsgenie.com",
                ),
                Part("api_key", "API integration key", "path", True),
                _optional("responders", "Responders (team:NAME,user:EMAIL)", "query"),
            ),
        ),
    )
}
