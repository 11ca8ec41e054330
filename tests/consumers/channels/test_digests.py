"""A digest through each channel: one message within its limit; webhooks post the document."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import quote

import httpx
import pytest

from consumers.digests import DigestMessage, digest_message, document
from consumers.store import DueGroup
from eventbus.envelope import DEFAULT_LIMITS

from .support import Recorder, build, make_event, make_message, mock_client

WORKFLOW = "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=SIGsecret123"
CHAT = [
    "discord://Abc-DEF_ghi123456789jkl@9",
    "ntfy://ntfy.sh/alerts",
    "pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/",
    "gotify://h/AJFh0x8Y3l6fEc2",
    "slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook",
    "mattermost://mm.example.com/hooktoken123",
    f"teams://?host={quote(WORKFLOW, safe='')}",
    "googlechat://chat.googleapis.com/v1/spaces/FOO/messages?key=KEYsecret1&token=TOKsecret2",
    "matrix://:syt_token123@m.example/?rooms=!abc:m.example",
    "telegram://123456:ABC-telegram-token_0123@telegram?chats=-100123",
]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def big_digest(count: int = 1000, shown: int = 50) -> DigestMessage:
    """The largest digest: 50 events with long errors out of 1000."""
    events = tuple(
        make_event(resource={"type": "host", "id": f"h{n}"}, error="disk full " * 30)
        .model_copy(update={"id": f"01HZX00000000000000000{n:04d}"})
        .to_json()
        .encode()
        for n in range(shown)
    )
    group = DueGroup("g", "dg_g_1", "pager", "ch", {"team": "team-1"}, 0.0, count, events)
    return digest_message(document(group), None, "dg_g_1", DEFAULT_LIMITS)


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, "result": {}})


@pytest.mark.parametrize("url", CHAT, ids=lambda url: url.split(":", 1)[0])
async def test_a_large_digest_is_one_message_with_its_title(url: str) -> None:
    message = big_digest()
    recorder = Recorder(ok)
    async with mock_client(recorder) as client:
        result = await build(client, url).send(message)
    assert result.ok, result.error
    assert len(recorder.requests) == 1, "one message, within the service's limit"
    request = recorder.last
    sent = request.content.decode() + " ".join(request.headers.values())
    assert "1000" in sent, "the title (with the count) is shown"
    assert "h0" in sent, "the first event's line is shown"


async def test_webhook_posts_the_digest_document_signed() -> None:
    message = big_digest(count=3, shown=3)
    recorder = Recorder(lambda request: httpx.Response(204))
    async with mock_client(recorder) as client:
        result = await build(
            client, "https://hooks.example.com/x", type="webhook", secret=SECRET
        ).send(message)
    assert result.ok
    request = recorder.last
    assert request.content == message.document
    doc = json.loads(request.content)
    assert (doc["type"], doc["count"], doc["truncated"], len(doc["events"])) == (
        "eventbus.digest",
        3,
        0,
        3,
    )
    msg_id, stamp = request.headers["webhook-id"], request.headers["webhook-timestamp"]
    assert msg_id == "dg_g_1"
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + request.content, hashlib.sha256)
    assert request.headers["webhook-signature"] == "v1," + base64.b64encode(mac.digest()).decode()


async def test_webhook_still_posts_the_envelope_of_a_plain_message() -> None:
    message = make_message()
    recorder = Recorder(lambda request: httpx.Response(204))
    async with mock_client(recorder) as client:
        await build(client, "https://hooks.example.com/x", type="webhook").send(message)
    assert json.loads(recorder.last.content)["id"] == message.event.id
