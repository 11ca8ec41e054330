"""Secrets (tokens, passwords, URL credentials) never appear in logs, results,
``describe()``, ``repr()``, planned requests or ``eventbus urls verify``."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
import structlog
from click.testing import CliRunner

from consumers.channels.base import ChannelDeps
from consumers.channels.registry import build_channel, channel_problems
from eventbus.cli import cli
from eventbus.settings import ChannelSpec, Settings

from .support import make_message

# Each URL holds the secret "S3CRETVALUE..." (or parts of it) wherever that
# service keeps its credential.
SECRET = "S3CRETVALUE0042xyz"
WORKFLOW = f"https://flow.example.com/workflows/1/invoke?api-version=1&sig={SECRET}"
URLS = [
    pytest.param(f"telegram://123456:{SECRET}@telegram?chats=1", id="telegram"),
    pytest.param(f"discord://{SECRET}@123", id="discord"),
    pytest.param(f"slack://hook:AAAAAAAAA-BBBBBBBBB-{SECRET}000000@webhook", id="slack-webhook"),
    pytest.param(f"slack://xoxb:123456789-123456789-{SECRET}000000@C01", id="slack-bot"),
    pytest.param(f"smtp://me:{SECRET}@mail.example.com/?from=a@x.io&to=b@x.io", id="smtp"),
    pytest.param(f"ntfy://:{SECRET}@ntfy.example.com/topic", id="ntfy-token"),
    pytest.param(f"ntfy://bob:{SECRET}@ntfy.example.com/topic", id="ntfy-basic"),
    pytest.param(f"gotify://gotify.example.com/gtfya.{SECRET}{'x' * 31}", id="gotify"),
    pytest.param(f"teams://?host={quote(WORKFLOW, safe='')}", id="teams"),
    pytest.param(f"matrix://:{SECRET}@m.example.com/?rooms=!a:m.example.com", id="matrix-token"),
    pytest.param(f"matrix://bot:{SECRET}@m.example.com/?rooms=!a:m.example.com", id="matrix-login"),
    pytest.param(f"pushover://shoutrrr:{SECRET}@USERKEY000111/", id="pushover"),
    pytest.param(f"mattermost://mm.example.com/{SECRET}", id="mattermost"),
    pytest.param(
        f"googlechat://chat.googleapis.com/v1/spaces/X/messages?key=k123&token={SECRET}",
        id="googlechat",
    ),
    pytest.param(
        f"generic://u:{SECRET}@example.com/hook?@Authorization=Bearer%20{SECRET}", id="generic"
    ),
]


def leaks(text: str) -> bool:
    return SECRET in text or quote(SECRET) in text


@pytest.mark.parametrize("url", URLS)
async def test_no_secret_anywhere(url: str) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        # a hostile server that echoes the URL and headers back in its error
        body = f"bad request to {request.url} with {dict(request.headers)}"
        return httpx.Response(400, text=body)

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    spec = ChannelSpec(name="c", url=url)
    assert not leaks(repr(spec))
    for handler in (echo, broken):
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            channel = build_channel(spec, ChannelDeps(http=client, timeout=2.0))
            with structlog.testing.capture_logs() as logs:
                result = await channel.send(make_message())
            assert not result.ok
            assert not leaks(repr(result)), result
            assert not leaks(repr(logs))
            assert not leaks(channel.describe()) and not leaks(repr(channel))
            plan = getattr(channel, "plan", None)
            if plan is not None:
                for request in plan(make_message()):
                    shown = " ".join(
                        [
                            repr(request),
                            request.safe_url(),
                            str(request.safe_headers()),
                            request.safe_body(),
                        ]
                    )
                    assert not leaks(shown), shown

    verify = CliRunner().invoke(cli, ["urls", "verify", url])
    assert verify.exit_code == 0, verify.stderr
    assert not leaks(verify.stdout + verify.stderr), verify.stdout


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"telegram://123:{SECRET}#x@telegram?chats=1", id="telegram-hash"),
        pytest.param(f"smtp://me:{SECRET}@host/?from=a@x.io", id="smtp-missing-to"),
        pytest.param(f"discord://{SECRET}@notanumber", id="discord-bad-id"),
    ],
)
def test_config_errors_do_not_leak(url: str) -> None:
    settings = Settings(channels=[{"name": "c", "url": url}])
    problems = list(channel_problems(settings))
    assert problems and not leaks(repr(problems))
    verify = CliRunner().invoke(cli, ["urls", "verify", url])
    assert verify.exit_code == 2 and not leaks(verify.stdout + verify.stderr)
