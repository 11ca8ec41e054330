"""Telegram: configuration forms, the exact sendMessage request, splitting,
escaping, error classification, and a fake Bot API server on loopback."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx
import pytest

from consumers.channels.base import ChannelDeps, OutcomeClass
from consumers.channels.registry import build_channel
from consumers.channels.telegram import MAX_TEXT, TelegramChannel, parse_chat
from eventbus.errors import ChannelConfigError

from ..telegram_fake import TOKEN as FAKE_TOKEN
from ..telegram_fake import FakeBotApi
from .support import Recorder, build, make_message, mock_client, spec

TOKEN = FAKE_TOKEN
SECRET_PART = TOKEN.split(":", 1)[1]


@pytest.mark.parametrize(
    ("url", "chats", "parse_mode"),
    [
        pytest.param(
            f"telegram://{TOKEN}@telegram?chats=@mychannel",
            ["@mychannel"],
            "HTML",
            id="channel-username",
        ),
        pytest.param(
            f"telegram://{TOKEN}@telegram?chats=12345,-100123:42&parsemode=None",
            ["12345", "-100123:42"],
            None,
            id="ids-and-thread",
        ),
        pytest.param(
            f"telegram://{TOKEN}@telegram/?Chats=1&ParseMode=MarkdownV2",
            ["1"],
            "MarkdownV2",
            id="case-insensitive-keys",
        ),
        pytest.param(
            f"telegram://{TOKEN}@telegram?chats=1&notification=no&preview=yes&title=Prod",
            ["1"],
            "HTML",
            id="shoutrrr-options",
        ),
    ],
)
def test_url_forms(url: str, chats: list[str], parse_mode: str | None) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, TelegramChannel)
    assert [str(c) for c in channel.chats] == chats
    assert channel.parse_mode == parse_mode


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("telegram://telegram?chats=1", "bot token", id="no-token"),
        pytest.param(f"telegram://{TOKEN}@telegram", "has no chat", id="no-chats"),
        pytest.param("telegram://123:sh%2Bort@telegram?chats=1", "malformed", id="bad-token"),
        pytest.param(f"telegram://{TOKEN}@telegram?chats=bad name", "not valid", id="bad-chat"),
        pytest.param(
            f"telegram://{TOKEN}@telegram?chats=1&parsemode=bbcode",
            "parse mode",
            id="bad-parse-mode",
        ),
        pytest.param(
            f"telegram://{TOKEN}@telegram?chats=1&chat=2", "unknown query key", id="unknown-key"
        ),
    ],
)
def test_url_errors(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError) as info:
        build(httpx.AsyncClient(), url)
    assert needle in str(info.value)
    assert SECRET_PART not in str(info.value)


def test_yaml_form_and_unknown_option() -> None:
    channel = build(
        httpx.AsyncClient(),
        None,
        type="telegram",
        bot_token=TOKEN,
        chat_id=["-1001", "@opsteam:7"],
        parse_mode="MarkdownV2",
        api_base="http://127.0.0.1:8081/",
    )
    assert isinstance(channel, TelegramChannel)
    assert channel.api_base == "http://127.0.0.1:8081"
    assert [str(c) for c in channel.chats] == ["-1001", "@opsteam:7"]
    with pytest.raises(ChannelConfigError, match=r"unknown option.*'chat'"):
        build(httpx.AsyncClient(), None, type="telegram", bot_token=TOKEN, chat="1")


def test_parse_chat() -> None:
    assert parse_chat("-100123:42").thread == 42
    assert parse_chat("@chan").id == "@chan"


async def test_exact_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"ok": True, "result": {}}))
    async with mock_client(recorder) as client:
        channel = build(
            client,
            f"telegram://{TOKEN}@telegram?chats=-100123:42&notification=no&parsemode=HTML&preview=no",
        )
        result = await channel.send(make_message(title="a <b> & c", body="x > y"))
    assert result.outcome is OutcomeClass.DELIVERED
    request = recorder.last
    assert request.method == "POST"
    assert str(request.url) == f"https://api.telegram.org/bot{TOKEN}/sendMessage"
    assert request.headers["content-type"] == "application/json"
    assert recorder.json() == {
        "chat_id": -100123,
        "text": "<b>a &lt;b&gt; &amp; c</b>\nx &gt; y",
        "parse_mode": "HTML",
        "message_thread_id": 42,
        "disable_notification": True,
        "link_preview_options": {"is_disabled": True},
    }


async def test_markdown_v2_escaping() -> None:
    recorder = Recorder()
    async with mock_client(recorder) as client:
        channel = build(client, f"telegram://{TOKEN}@telegram?chats=1&parsemode=MarkdownV2")
        await channel.send(make_message(title="a.b", body="1-2 (x) [y]!"))
    assert recorder.json()["text"] == "*a\\.b*\n1\\-2 \\(x\\) \\[y\\]\\!"


async def test_long_text_is_split_on_lines_and_each_part_fits() -> None:
    recorder = Recorder()
    body = "\n".join(f"line {i} " + "<&>" * 30 for i in range(200))
    async with mock_client(recorder) as client:
        channel = build(client, f"telegram://{TOKEN}@telegram?chats=1&parsemode=none")
        assert isinstance(channel, TelegramChannel)
        result = await channel.send(make_message(body=body))
    assert result.ok
    texts = [json.loads(r.content)["text"] for r in recorder.requests]
    assert len(texts) > 1
    assert all(len(t) <= MAX_TEXT for t in texts)
    assert "\n".join(texts).endswith(body.splitlines()[-1])
    assert all(t.split("\n")[-1].startswith("line") or t.startswith("capsule") for t in texts)


@pytest.mark.parametrize(
    ("status", "answer", "outcome", "needle", "retry_after"),
    [
        pytest.param(
            400,
            {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
            OutcomeClass.PERMANENT,
            "chat not found",
            None,
            id="chat-not-found",
        ),
        pytest.param(
            200,
            {"ok": False, "error_code": 400, "description": "odd"},
            OutcomeClass.PERMANENT,
            "odd",
            None,
            id="ok-false-with-200",
        ),
        pytest.param(
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7},
            },
            OutcomeClass.RATE_LIMITED,
            "retry after 7",
            7.0,
            id="429-retry-after",
        ),
        pytest.param(
            400,
            {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: group chat was upgraded",
                "parameters": {"migrate_to_chat_id": -1009},
            },
            OutcomeClass.PERMANENT,
            "replace 1 by -1009",
            None,
            id="migrated",
        ),
        pytest.param(
            401,
            {"ok": False, "error_code": 401, "description": "Unauthorized"},
            OutcomeClass.PERMANENT,
            "check bot_token",
            None,
            id="unauthorized",
        ),
        pytest.param(
            403,
            {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"},
            OutcomeClass.PERMANENT,
            "cannot write",
            None,
            id="blocked",
        ),
        pytest.param(
            502,
            "<html>bad gateway</html>",
            OutcomeClass.RETRYABLE,
            "not a Bot API",
            None,
            id="proxy-502",
        ),
        pytest.param(
            500,
            {"ok": False, "error_code": 500, "description": "Internal"},
            OutcomeClass.RETRYABLE,
            "Internal",
            None,
            id="server-error",
        ),
    ],
)
async def test_error_classification(
    status: int, answer: Any, outcome: OutcomeClass, needle: str, retry_after: float | None
) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, str):
            return httpx.Response(status, text=answer)
        return httpx.Response(status, json=answer)

    async with mock_client(Recorder(respond)) as client:
        channel = build(client, f"telegram://{TOKEN}@telegram?chats=1")
        result = await channel.send(make_message())
    assert result.outcome is outcome
    assert needle in (result.error or "")
    assert result.retry_after == retry_after
    assert SECRET_PART not in (result.error or "") + (result.response_excerpt or "")


async def test_transport_errors_are_retryable_and_redacted() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    async with mock_client(Recorder(fail)) as client:
        result = await build(client, f"telegram://{TOKEN}@telegram?chats=1").send(make_message())
    assert result.outcome is OutcomeClass.RETRYABLE
    assert SECRET_PART not in (result.error or "")

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    async with mock_client(Recorder(slow)) as client:
        result = await build(client, f"telegram://{TOKEN}@telegram?chats=1").send(make_message())
    assert result.outcome is OutcomeClass.RETRYABLE and "timed out" in (result.error or "")


def visible(text: str) -> str:
    """What Telegram counts against the limit: the text after entity parsing."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


async def test_fake_server_split_429_and_failure(bot_api: tuple[FakeBotApi, str]) -> None:
    fake, base = bot_api
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    clock = [0.0]
    async with httpx.AsyncClient() as client:
        channel = build_channel(
            spec(None, type="telegram", bot_token=TOKEN, chat_id="-100777", api_base=base),
            ChannelDeps(http=client, timeout=5.0),
            clock=lambda: clock[0],
            sleep=no_sleep,
        )
        long_body = "\n".join(f"row {i}: " + "x" * 90 for i in range(100))  # ~9.6k chars
        result = await channel.send(make_message(body=long_body))
        assert result.ok, result.error
        assert len(fake.received) == 3
        assert all(len(visible(p["text"])) <= MAX_TEXT for p in fake.received)
        assert {p["chat_id"] for p in fake.received} == {-100777}

        fake.script.append(
            (
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 30",
                    "parameters": {"retry_after": 30},
                },
            )
        )
        limited = await channel.send(make_message(body="short"))
        assert limited.outcome is OutcomeClass.RATE_LIMITED and limited.retry_after == 30
        # the 429 paused the chat's bucket: the next send is refused without a request
        count = len(fake.received)
        again = await channel.send(make_message(body="short"))
        assert again.outcome is OutcomeClass.RATE_LIMITED
        assert len(fake.received) == count
        assert again.retry_after is not None and 28 < again.retry_after <= 30

        clock[0] += 31
        fake.script.append(
            (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
        )
        failed = await channel.send(make_message(body="short"))
        assert failed.outcome is OutcomeClass.PERMANENT
        assert "chat not found" in (failed.error or "")
        assert SECRET_PART not in (failed.error or "")
