"""What leaves the process: no configured secret in any log line, of any logger, at debug.

Round one's secret tests passed while httpx's own INFO logger printed bot
tokens in request URLs. This configures a channel of every type with
secrets where each service keeps them, delivers one event through each
(answered by a local fake, or refused, so error paths log too) with logging
at ``debug`` in JSON, and searches everything written for every secret, raw
and percent-encoded (issue 12, item 1).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis.asyncio as aioredis
import structlog

from consumers.channels.registry import build_channels
from consumers.daemon import _redact_logs, make_channel_deps
from consumers.worker import Worker
from eventbus.logs import configure_logging, set_log_redactor
from eventbus.settings import LoggingSettings, Settings
from publishers import Publisher

from .fakes import event

pytestmark = pytest.mark.integration

TOKEN = "S3CRETVALUE0042xyz"  # in URLs, wherever each service keeps its credential
HOOK_PATH = "pathTOKEN7777abcdEF"  # a capability token in a webhook's path
WHSEC = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HEADER = "hdrVALUE5555zzzz"
API_TOKEN = "apiTOKEN9999qqqq"
SECRETS = [TOKEN, HOOK_PATH, WHSEC, HEADER, API_TOKEN]

WORKFLOW = f"https://flow.example.com/workflows/1/invoke?api-version=1&sig={TOKEN}"
CHANNELS: list[dict[str, Any]] = [
    {"name": "console", "type": "console"},
    {
        "name": "hook",
        "type": "webhook",
        "url": f"https://hooks.example.com/services/{HOOK_PATH}?token={TOKEN}",
        "secret": WHSEC,
        "headers": {"X-Api-Key": HEADER},
    },
    {"name": "telegram", "url": f"telegram://123456:{TOKEN}@telegram?chats=1"},
    {"name": "discord", "url": f"discord://{TOKEN}@123"},
    {"name": "slack-hook", "url": f"slack://hook:AAAAAAAAA-BBBBBBBBB-{TOKEN}000000@webhook"},
    {"name": "slack-bot", "url": f"slack://xoxb:123456789-123456789-{TOKEN}000000@C01"},
    {"name": "smtp", "url": f"smtp://me:{TOKEN}@127.0.0.1:1/?from=a@x.io&to=b@x.io"},
    {"name": "ntfy", "url": f"ntfy://:{TOKEN}@ntfy.example.com/topic"},
    {"name": "gotify", "url": f"gotify://gotify.example.com/gtfya.{TOKEN}{'x' * 31}"},
    {"name": "teams", "url": f"teams://?host={quote(WORKFLOW, safe='')}"},
    {"name": "matrix", "url": f"matrix://:{TOKEN}@m.example.com/?rooms=!a:m.example.com"},
    {"name": "pushover", "url": f"pushover://shoutrrr:{TOKEN}@USERKEY000111/"},
    {"name": "mattermost", "url": f"mattermost://mm.example.com/{TOKEN}"},
    {
        "name": "googlechat",
        "url": f"googlechat://chat.googleapis.com/v1/spaces/X/messages?key=k123&token={TOKEN}",
    },
    {"name": "generic", "url": f"generic://u:{TOKEN}@example.com/hook?@X-Token={TOKEN}"},
]


def _answer(request: httpx.Request) -> httpx.Response:
    """Every service's success, echoing what it was sent (as careless servers do)."""
    echo = f"{request.url} {dict(request.headers)}"
    if request.url.host == "api.telegram.org":
        return httpx.Response(200, json={"ok": True, "result": {"message_id": 1}, "echo": echo})
    return httpx.Response(200, json={"ok": True, "id": "1", "event_id": "$1", "echo": echo})


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text or quote(s, safe="") in text or quote(s) in text]


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(LoggingSettings(level="debug", format="json"), stream=stream)
    yield stream
    set_log_redactor(None)
    structlog.reset_defaults()
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


async def test_no_secret_in_any_log_line_at_debug(
    log_stream: io.StringIO, make_settings: Any, redis: aioredis.Redis
) -> None:
    settings: Settings = make_settings(
        channels=CHANNELS,
        subscriptions=[
            {"name": "all", "team": "*", "events": ["*"], "channels": [c["name"] for c in CHANNELS]}
        ],
        http={"tokens": [{"name": "dash", "token": API_TOKEN}]},
        security={"allow_private_targets": True},
        consumer={"retry_schedule": ["1h"]},
    )
    # A plain client on a fake transport: requests go through httpx's own
    # send path, whose INFO logger printed full request URLs.
    async with httpx.AsyncClient(transport=httpx.MockTransport(_answer)) as http:
        channels = build_channels(settings, make_channel_deps(settings, http))
        _redact_logs(settings, channels)  # what the daemon does once channels are built
        logging.getLogger("httpx").debug("startup check %s", CHANNELS[1]["url"])
        worker = Worker(settings, redis=redis, channels=channels)
        await worker.start()
        async with Publisher(settings, redis=redis) as bus:
            await bus.publish(event(outcome="error", error=f"receiver said token={TOKEN}"))
        await worker.drain()

    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    deliveries = {line["channel"]: line["event"] for line in lines if "delivery_id" in line}
    assert set(deliveries) == {c["name"] for c in CHANNELS}, deliveries
    assert deliveries["telegram"] == "delivery.sent" and deliveries["hook"] == "delivery.sent"
    assert deliveries["smtp"] != "delivery.sent"  # refused: an error path logged too
    assert any(line.get("logger") == "httpx" for line in lines), "httpx logged at debug"
    assert _leaks(log_stream.getvalue()) == []
