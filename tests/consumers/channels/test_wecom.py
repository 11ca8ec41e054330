"""WeCom group bots: shoutrrr's URL table, the request, errcode classification, the guard.

Sources are paths in nicholas-fedor/shoutrrr: docs/services/chat/wecom/index.md
(docs) and pkg/services/chat/wecom/wecom_test.go (tests).
"""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.channels.base import ChannelDeps, OutcomeClass
from consumers.channels.registry import create_channel
from consumers.channels.wecom import CONTENT_MAX_BYTES, WecomChannel
from consumers.outbound import make_http_client
from consumers.ratelimit import limiter_for
from eventbus.cli import cli
from eventbus.errors import ChannelConfigError
from eventbus.settings import SecuritySettings

from .support import Recorder, build, make_message, mock_client, spec

DOCS = "docs/services/chat/wecom/index.md"
TESTS = "pkg/services/chat/wecom/wecom_test.go"
KEY = "693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa"
OK = {"errcode": 0, "errmsg": "ok"}


@pytest.mark.parametrize(
    ("url", "mentioned", "mobiles"),
    [
        pytest.param(f"wecom://{KEY}", [], [], id=f"{DOCS}: example URL"),
        pytest.param(f"wecom://{KEY}", [], [], id=f"{TESTS}: fullURL"),
        pytest.param(
            f"wecom://{KEY}?mentioned_list=@all", ["@all"], [], id=f"{DOCS}: with mentions"
        ),
        pytest.param(
            f"wecom://{KEY}?Mentioned_List=alice,bob&MENTIONED_MOBILE_LIST=13800001111",
            ["alice", "bob"],
            ["13800001111"],
            id="keys are case-insensitive, lists comma-separated",
        ),
    ],
)
def test_url_good(url: str, mentioned: list[str], mobiles: list[str]) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, WecomChannel)
    assert (channel.mentioned, channel.mentioned_mobiles) == (mentioned, mobiles)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("wecom://invalid.key", "key is not valid", id=f"{TESTS}: invalid key format"),
        pytest.param("wecom://", "no webhook key", id=f"{TESTS}: empty key"),
        pytest.param(
            f"wecom://{KEY}?foo=bar", "unknown query key", id=f"{TESTS}: invalid query key"
        ),
        pytest.param(f"wecom://{KEY}/more", "key is not valid", id="a path after the key"),
        pytest.param(f"wecom://user@{KEY}", "no user or password", id="user info"),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_exact_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json=OK))
    async with mock_client(recorder) as client:
        result = await build(client, f"wecom://{KEY}?mentioned_list=@all").send(make_message())
    assert result.ok
    request = recorder.last
    assert request.method == "POST"
    assert str(request.url) == f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"
    assert request.headers["content-type"] == "application/json"
    assert recorder.json() == {
        "msgtype": "text",
        "text": {
            "content": TEXT,
            "mentioned_list": ["@all"],
        },
    }


async def test_long_text_is_cut_to_the_byte_limit() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json=OK))
    async with mock_client(recorder) as client:
        await build(client, f"wecom://{KEY}").send(make_message(body="告警" * 2000))
    content = recorder.json()["text"]["content"]
    assert len(content.encode()) <= CONTENT_MAX_BYTES and content.endswith("\u2026")


@pytest.mark.parametrize(
    ("answer", "outcome", "retry_after", "needle"),
    [
        pytest.param(
            httpx.Response(200, json={"errcode": 93000, "errmsg": "invalid webhook url"}),
            OutcomeClass.PERMANENT,
            None,
            "errcode 93000: invalid webhook url",
            id="bad-key",
        ),
        pytest.param(
            httpx.Response(200, json={"errcode": 1, "errmsg": "some error"}),
            OutcomeClass.PERMANENT,
            None,
            "some error",
            id=f"{TESTS}: non-zero errcode",
        ),
        pytest.param(
            httpx.Response(200, text="some response"),
            OutcomeClass.PERMANENT,
            None,
            "not a WeCom answer",
            id=f"{TESTS}: invalid JSON response",
        ),
        pytest.param(
            httpx.Response(400, text="bad request"),
            OutcomeClass.PERMANENT,
            None,
            "HTTP 400",
            id=f"{TESTS}: HTTP 400",
        ),
        pytest.param(
            httpx.Response(200, json={"errcode": 45009, "errmsg": "api freq out of limit"}),
            OutcomeClass.RATE_LIMITED,
            60.0,
            "45009",
            id="errcode-rate-limit",
        ),
        pytest.param(
            httpx.Response(200, json={"errcode": -1, "errmsg": "system busy"}),
            OutcomeClass.RETRYABLE,
            None,
            "system busy",
            id="busy",
        ),
        pytest.param(httpx.Response(429), OutcomeClass.RETRYABLE, None, "429", id="429-no-hint"),
        pytest.param(
            httpx.Response(429, headers={"Retry-After": "30"}),
            OutcomeClass.RATE_LIMITED,
            30.0,
            "429",
            id="429-retry-after",
        ),
        pytest.param(httpx.Response(502), OutcomeClass.RETRYABLE, None, "502", id="502"),
    ],
)
async def test_errors(
    answer: httpx.Response, outcome: OutcomeClass, retry_after: float | None, needle: str
) -> None:
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, f"wecom://{KEY}").send(make_message())
    assert (result.outcome, result.retry_after) == (outcome, retry_after)
    assert needle in (result.error or "")
    assert KEY not in str(result)


async def test_api_base_override() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json=OK))
    async with mock_client(recorder) as client:
        await build(client, f"wecom://{KEY}", api_base="http://127.0.0.1:9").send(make_message())
    assert str(recorder.last.url) == f"http://127.0.0.1:9/cgi-bin/webhook/send?key={KEY}"


async def test_private_target_refused_without_allow_private() -> None:
    security = SecuritySettings()
    async with make_http_client(security, timeout=5) as http:
        channel = create_channel(
            spec(f"wecom://{KEY}", api_base="http://127.0.0.1:1"),
            ChannelDeps(http=http, security=security),
        )
        result = await channel.send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert "security.allow_private_targets" in (result.error or "")


TEXT = "capsule.create failed: capsule c1 (team-1)\nOutcome: error\nError: quota exceeded"


def test_default_rate_limit_stays_under_20_a_minute() -> None:
    limiter = limiter_for(spec(f"wecom://{KEY}"), "wecom")
    assert limiter is not None and limiter.channel_spec is not None
    bucket = limiter.channel_spec
    assert bucket.burst + bucket.rate * 60 / bucket.per <= 20


def test_urls_verify_masks_the_key() -> None:
    result = CliRunner().invoke(cli, ["urls", "verify", f"wecom://{KEY}?mentioned_list=@all"])
    assert result.exit_code == 0, result.output
    assert "POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***" in result.stdout
    assert '"msgtype": "text"' in result.stdout
    assert KEY not in result.stdout + result.stderr


async def test_the_severity_tags_the_title() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json=OK))
    async with mock_client(recorder) as client:
        await build(client, f"wecom://{KEY}").send(make_message(severity="warning"))
    content = recorder.json()["text"]["content"]
    assert content.startswith("[WARNING] capsule.create failed: capsule c1 (team-1)\n")


# no deadline: the machine running the suite may be loaded
@settings(deadline=None)
@given(st.text(max_size=3000))
def test_content_is_valid_utf8_within_the_limit_whatever_the_text(body: str) -> None:
    channel = build(httpx.AsyncClient(), f"wecom://{KEY}")
    assert isinstance(channel, WecomChannel)
    (request,) = channel.plan(make_message(body=body))
    content = request.json["text"]["content"]
    assert len(content.encode()) <= CONTENT_MAX_BYTES
    assert content.startswith("capsule.create failed")
