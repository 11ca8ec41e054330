"""Lark / Feishu: shoutrrr's URLs (each case cites its source in
nicholas-fedor/shoutrrr), the post message, the signature, and Lark's codes."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest

from consumers.channels.base import ChannelDeps, OutcomeClass
from consumers.channels.lark import LarkChannel, create, sign
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client, spec

TEST = "pkg/services/chat/lark/lark_test.go"
DOC = "docs/services/chat/lark/index.md"
CONFIG = "pkg/services/chat/lark/lark_config.go"


@pytest.mark.parametrize(
    ("url", "base", "signed"),
    [
        pytest.param(
            "lark://open.larksuite.com/token?secret=sss",
            "https://open.larksuite.com",
            True,
            id=f"{TEST}: fullURL",
        ),
        pytest.param(
            "lark://open.larksuite.com/abc123?secret=xyz789&title=Alert&link=https://example.com",
            "https://open.larksuite.com",
            True,
            id=f"{DOC}: example URL",
        ),
        pytest.param(
            "lark://open.feishu.cn/xxxxxxxxxxxxxxxxx",
            "https://open.feishu.cn",
            False,
            id=f"{DOC}: Feishu",
        ),
        pytest.param(
            "lark:///tok", "https://open.larksuite.com", False, id=f"{CONFIG}: empty host"
        ),
        pytest.param(
            "lark://open.larksuite.com/tok?SECRET=s&Title=t",
            "https://open.larksuite.com",
            True,
            id=f"{CONFIG}: any case",
        ),
    ],
)
def test_shoutrrr_urls(url: str, base: str, signed: bool) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, LarkChannel) and channel.base == base
    [request] = channel.plan(make_message())
    assert ("sign" in request.json) is signed


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("lark://invalid.com/token", "invalid host", id=f"{TEST}: invalid host"),
        pytest.param("lark://open.larksuite.com", "no bot token", id=f"{TEST}: no path"),
        pytest.param(
            "lark://open.larksuite.com/token?secret=sss&foo=bar",
            "unknown query key",
            id=f"{TEST}: invalid query key",
        ),
        pytest.param(
            "lark://open.larksuite.com:8443/t", "invalid host", id=f"{CONFIG}: host with port"
        ),
    ],
)
def test_refused(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


def test_signature_is_hmac_sha256_keyed_with_timestamp_and_secret() -> None:
    # lark_service.go genSign: HMAC-SHA256, key "<timestamp>\n<secret>", empty message
    expected = hmac.new(b"1700000000\nsss", b"", hashlib.sha256).digest()
    assert sign("sss", 1700000000) == base64.b64encode(expected).decode()


async def test_exact_request_signed_when_sent() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"code": 0, "msg": "success"}))
    now = [1_700_000_000.0]
    async with mock_client(recorder) as client:
        channel = create(
            spec("lark://open.feishu.cn/tok123?secret=s3cr&title=Ops"),
            ChannelDeps(http=client),
        )
        channel._clock = lambda: now[0]
        result = await channel.send(make_message(link="https://l.example/c1"))
    assert result.ok, result.error
    request = recorder.last
    assert request.method == "POST"
    assert str(request.url) == "https://open.feishu.cn/open-apis/bot/v2/hook/tok123"
    assert request.headers["content-type"] == "application/json"
    assert recorder.json() == {
        "msg_type": "post",
        "content": {
            "post": {
                "en_us": {
                    "title": "Ops: capsule.create failed: capsule c1 (team-1)",
                    "content": [
                        [{"tag": "text", "text": "Outcome: error\nError: quota exceeded"}],
                        [{"tag": "a", "text": "More Info", "href": "https://l.example/c1"}],
                    ],
                }
            }
        },
        "timestamp": "1700000000",
        "sign": sign("s3cr", 1_700_000_000),
    }


async def test_link_from_the_url_wins_and_text_is_cut_to_4096_bytes() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"code": 0}))
    async with mock_client(recorder) as client:
        channel = build(client, "lark://open.larksuite.com/t?link=https://example.com")
        message = make_message(body="é" * 5000, link="https://other.example")
        assert (await channel.send(message)).ok
    content = recorder.json()["content"]["post"]["en_us"]["content"]
    assert len(content[0][0]["text"].encode()) <= 4096
    assert content[1][0]["href"] == "https://example.com"


async def test_api_base() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, json={"code": 0}))
    async with mock_client(recorder) as client:
        channel = build(client, "lark://open.larksuite.com/t", api_base="http://127.0.0.1:9")
        assert (await channel.send(make_message())).ok
    assert str(recorder.last.url) == "http://127.0.0.1:9/open-apis/bot/v2/hook/t"


@pytest.mark.parametrize(
    ("status", "body", "outcome", "needle"),
    [
        pytest.param(
            200,
            {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"},
            OutcomeClass.PERMANENT,
            "sign match fail",
            id="bad-signature",
        ),
        pytest.param(
            200,
            {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"},
            OutcomeClass.PERMANENT,
            "token invalid",
            id="bad-token",
        ),
        pytest.param(
            200,
            {"code": 1, "msg": "some error"},
            OutcomeClass.PERMANENT,
            "some error",
            id=f"{TEST}: non-zero code",
        ),
        pytest.param(
            400,
            {"code": 9499, "msg": "too many request", "data": {}},
            OutcomeClass.RATE_LIMITED,
            "too many request",
            id="rate-limited (ccfos/nightingale#1437)",
        ),
        pytest.param(500, {}, OutcomeClass.RETRYABLE, "500", id="server-error"),
        pytest.param(
            200,
            {"StatusCode": 0, "StatusMessage": "success"},
            OutcomeClass.DELIVERED,
            "",
            id="old-success",
        ),
    ],
)
async def test_answers(status: int, body: object, outcome: OutcomeClass, needle: str) -> None:
    answer = httpx.Response(status, json=body)
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, "lark://open.larksuite.com/TOKEN9SECRET").send(make_message())
    assert result.outcome is outcome and needle in (result.error or "")
    assert "TOKEN9SECRET" not in (result.error or "")
    if outcome is OutcomeClass.RATE_LIMITED:
        assert result.retry_after == 60
