"""``telegram``: Bot API ``sendMessage`` to one or more chats.

Configured either as ``type: telegram`` with ``bot_token``, ``chat_id`` (one,
a list, or ``chat:thread``), ``parse_mode`` and ``api_base``, or with the
shoutrrr URL ``telegram://TOKEN@telegram?chats=@chan,-100123:42``.

Telegram answers errors in JSON with ``ok: false`` (sometimes with HTTP
200), so the body is always checked. Text over 4096 characters is split
into several messages on line boundaries; each piece is escaped for the
parse mode after splitting, so the limit applies to what the user sees.
The title starts with the severity tag from ``warning`` up (``[CRITICAL] ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec

from ._format import escape_html, escape_markdown_v2, headline, plain_text, split_text
from ._http import HttpChannel, PlannedRequest
from ._options import Options, base_url, channel_url, require, timeout_of
from .base import ChannelDeps, Message, OutcomeClass, SendResult
from .outcomes import classify_status, excerpt

__all__ = ["DEFAULT_API_BASE", "MAX_TEXT", "Chat", "TelegramChannel", "create", "parse_chat"]

DEFAULT_API_BASE = "https://api.telegram.org"
MAX_TEXT = 4096
# shoutrrr's telegram_token.go
_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_CHAT_RE = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{3,}|-?\d+)(?::(\d+))?$")
_PARSE_MODES = {
    # shoutrrr's legacy "Markdown" is sent as MarkdownV2, which eventbus escapes for
    "html": "HTML",
    "markdownv2": "MarkdownV2",
    "markdown": "MarkdownV2",
    "none": None,
    "plain": None,
    "": None,
}
_URL_KEYS = ("chats", "parsemode", "notification", "preview", "title")


@dataclass(frozen=True, slots=True)
class Chat:
    id: int | str
    thread: int | None = None

    def __str__(self) -> str:
        return f"{self.id}:{self.thread}" if self.thread is not None else str(self.id)


def parse_chat(value: str) -> Chat:
    """``12345``, ``-100123``, ``@channel`` or any of them with ``:thread``."""
    match = _CHAT_RE.match(value.strip())
    if match is None:
        raise ChannelConfigError(
            f"telegram chat {value!r} is not valid: use a numeric chat id (e.g. -1001234567890), "
            "@channelusername, or either followed by :THREAD_ID for a forum topic"
        )
    chat, thread = match.group(1), match.group(2)
    return Chat(chat if chat.startswith("@") else int(chat), int(thread) if thread else None)


class TelegramChannel(HttpChannel):
    type = "telegram"

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        token: str,
        chats: list[Chat],
        parse_mode: str | None = "HTML",
        api_base: str = DEFAULT_API_BASE,
        notification: bool = True,
        preview: bool = False,
        title_prefix: str = "",
        timeout: float = 15.0,
    ) -> None:
        super().__init__(name, http, timeout, [token, token.partition(":")[2]])
        self._token = token
        self.chats = chats
        self.parse_mode = parse_mode
        self.api_base = api_base
        self._notification = notification
        self._preview = preview
        self._title_prefix = title_prefix

    @property
    def bot_id(self) -> str:
        return self._token.partition(":")[0]

    def describe(self) -> str:
        chats = ", ".join(str(c) for c in self.chats)
        where = "" if self.api_base == DEFAULT_API_BASE else f" via {self.api_base}"
        return f"telegram bot {self.bot_id} -> {chats}{where}"

    def pieces(self, message: Message) -> list[str]:
        """The texts to send to each chat, escaped for the parse mode."""
        title = headline(message, self._title_prefix)
        text = plain_text(message).replace(message.title, title, 1)
        parts = split_text(text, MAX_TEXT)
        if self.parse_mode == "HTML":
            shaped = [escape_html(p) for p in parts]
            if parts[0].startswith(title):
                shaped[0] = f"<b>{escape_html(title)}</b>" + escape_html(parts[0][len(title) :])
            return shaped
        if self.parse_mode == "MarkdownV2":
            shaped = [escape_markdown_v2(p) for p in parts]
            if parts[0].startswith(title):
                rest = escape_markdown_v2(parts[0][len(title) :])
                shaped[0] = f"*{escape_markdown_v2(title)}*{rest}"
            return shaped
        return parts

    def plan(self, message: Message) -> list[PlannedRequest]:
        url = f"{self.api_base}/bot{self._token}/sendMessage"
        pieces = self.pieces(message)
        requests = []
        for chat in self.chats:
            for index, text in enumerate(pieces):
                body: dict[str, Any] = {"chat_id": chat.id, "text": text}
                if self.parse_mode:
                    body["parse_mode"] = self.parse_mode
                if chat.thread is not None:
                    body["message_thread_id"] = chat.thread
                if not self._notification:
                    body["disable_notification"] = True
                if not self._preview:
                    body["link_preview_options"] = {"is_disabled": True}
                note = f"part {index + 1} of {len(pieces)}" if len(pieces) > 1 else ""
                requests.append(
                    PlannedRequest(
                        "POST",
                        url,
                        headers={"Content-Type": "application/json"},
                        json=body,
                        rate_key=f"chat:{chat.id}",
                        secrets=self._secrets,
                        note=note,
                    )
                )
        return requests

    def classify(
        self, request: PlannedRequest, response: httpx.Response, latency: float, body: bytes
    ) -> SendResult:
        status = response.status_code
        body_excerpt = excerpt(response.content) if response.content else None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or "ok" not in data:
            outcome = classify_status(status)
            if outcome is OutcomeClass.DELIVERED:
                outcome = OutcomeClass.PERMANENT
            return SendResult(
                outcome,
                status=status,
                latency=latency,
                response_excerpt=body_excerpt,
                error=f"HTTP {status}: not a Bot API response (check api_base)",
            )
        if data.get("ok") is True:
            return SendResult(OutcomeClass.DELIVERED, status=status, latency=latency)
        return _error_result(request, data, status, latency, body_excerpt)


def _error_result(
    request: PlannedRequest,
    data: dict[str, Any],
    status: int,
    latency: float,
    body_excerpt: str | None,
) -> SendResult:
    code = data.get("error_code")
    code = code if isinstance(code, int) else status
    description = str(data.get("description") or "no description")[:300]
    params = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    assert isinstance(params, dict)
    chat = (request.json or {}).get("chat_id")
    retry_after = params.get("retry_after")
    migrate_to = params.get("migrate_to_chat_id")
    if migrate_to is not None:
        return SendResult(
            OutcomeClass.PERMANENT,
            status=status,
            latency=latency,
            response_excerpt=body_excerpt,
            error=f"telegram chat {chat} was upgraded to a supergroup with id {migrate_to}: "
            f"replace {chat} by {migrate_to} in the channel's chat_id / chats",
        )
    if isinstance(retry_after, int | float):
        return SendResult(
            OutcomeClass.RATE_LIMITED if code == 429 else OutcomeClass.RETRYABLE,
            status=status,
            latency=latency,
            response_excerpt=body_excerpt,
            retry_after=float(retry_after),
            error=f"telegram error {code} for chat {chat}: {description} "
            f"(retry after {retry_after}s)",
        )
    outcome = classify_status(code) if code >= 400 else OutcomeClass.PERMANENT
    hint = ""
    if code == 401:
        hint = ": the bot token was rejected, check bot_token"
    elif code == 403:
        hint = ": the bot cannot write to this chat (blocked, removed, or not an admin)"
    elif code == 400 and "chat not found" in description.lower():
        hint = ": check the chat id and that the bot was added to the chat"
    return SendResult(
        outcome,
        status=status,
        latency=latency,
        response_excerpt=body_excerpt,
        error=f"telegram error {code} for chat {chat}: {description}{hint}",
    )


def _parse_mode(value: str | None) -> str | None:
    key = (value if value is not None else "HTML").strip().lower()
    if key not in _PARSE_MODES:
        raise ChannelConfigError(
            f"telegram parse mode {value!r} is not supported: use HTML, MarkdownV2 or None"
        )
    return _PARSE_MODES[key]


def _check_token(token: str) -> str:
    if not _TOKEN_RE.match(token):
        raise ChannelConfigError(
            "telegram bot token is malformed: it looks like 123456789:AAE... (digits, ':', "
            "then the secret); in a URL write telegram://123456789:SECRET@telegram?chats=..."
        )
    return token


def create(spec: ChannelSpec, deps: ChannelDeps) -> TelegramChannel:
    opts = Options(spec, "telegram")
    url = channel_url(spec, "telegram", required=False)
    api_base = base_url(opts.string("api_base"), DEFAULT_API_BASE)
    bot_token: str | None = None
    if url is not None:
        url.check_keys(_URL_KEYS)
        token = require(
            f"{url.user}:{url.password}" if url.user and url.password else None,
            "telegram URL bot token",
            "write telegram://BOT_TOKEN@telegram?chats=... (the token has the form 123:ABC)",
        )
        chats_raw = url.get("chats", "") or ""
        # shoutrrr's default (telegram_config.go) for previews: on. Its parse
        # mode defaults to None; eventbus keeps HTML, escaped, for a bold title
        # (parseMode=None sends the plain text).
        parse_mode = _parse_mode(url.get("parsemode"))
        notification = url.flag("notification", True)
        preview = url.flag("preview", True)
        title = url.get("title", "") or ""
        for key in ("bot_token", "chat_id", "parse_mode"):
            if opts.string(key) is not None:
                raise ChannelConfigError(
                    f"telegram option {key!r} cannot be combined with url: put it in the URL"
                )
        chats = [c.strip() for c in chats_raw.split(",") if c.strip()]
    else:
        bot_token = opts.secret("bot_token")
        chats = opts.strings("chat_id")
        parse_mode = _parse_mode(opts.string("parse_mode"))
        notification = not opts.flag("disable_notification", False)
        preview = opts.flag("link_preview", False)
        title = ""
    # Unknown options first: "token:" for bot_token is a misspelling to name,
    # not a missing bot_token.
    opts.done()
    if url is None:
        token = require(
            bot_token,
            "telegram bot_token",
            "set bot_token (from @BotFather) or use a telegram:// url",
        )
    if not chats:
        raise ChannelConfigError(
            "telegram channel has no chat: set chat_id (YAML) or chats=... (URL), "
            "e.g. -1001234567890 or @channelname"
        )
    return TelegramChannel(
        spec.name,
        deps.http,
        token=_check_token(token),
        chats=[parse_chat(c) for c in chats],
        parse_mode=parse_mode,
        api_base=api_base,
        notification=notification,
        preview=preview,
        title_prefix=title,
        timeout=timeout_of(spec, deps),
    )
