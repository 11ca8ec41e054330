"""IFTTT: shoutrrr's URLs (each case cites its source in nicholas-fedor/shoutrrr),
one request per event, the value fields, and the answers."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.base import OutcomeClass
from consumers.channels.ifttt import IftttChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client

TEST = "pkg/services/push/ifttt/ifttt_test.go"
DOC = "docs/services/push/ifttt/index.md"
TITLE = "capsule.create failed: capsule c1 (team-1)"
BODY = "Outcome: error\nError: quota exceeded"


@pytest.mark.parametrize(
    ("url", "events", "message_value", "title_value"),
    [
        pytest.param("ifttt://dummyID/?events=event1", ["event1"], 2, 0, id=f"{TEST}: minimal"),
        pytest.param(
            "ifttt://dummyID/?events=foo%2Cbar%2Cbaz",
            ["foo", "bar", "baz"],
            2,
            0,
            id=f"{TEST}: events comma-separated",
        ),
        pytest.param(
            "ifttt://dummyID/?events=event1&value1=v1&value2=v2&value3=v3",
            ["event1"],
            2,
            0,
            id=f"{TEST}: values",
        ),
        pytest.param(
            "ifttt://key/?events=event1,event2&value1=a&value2=b&value3=c&messagevalue=3"
            "&titlevalue=1",
            ["event1", "event2"],
            3,
            1,
            id=f"{DOC}: URL format",
        ),
        pytest.param(
            "ifttt://key/?Events=e&MessageValue=1", ["e"], 1, 0, id=f"{TEST}: keys any case"
        ),
    ],
)
def test_shoutrrr_urls(url: str, events: list[str], message_value: int, title_value: int) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, IftttChannel)
    assert (channel.events, channel.message_value, channel.title_value) == (
        events,
        message_value,
        title_value,
    )


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("ifttt://", "no events", id=f"{TEST}: no arguments"),
        pytest.param("ifttt:///?events=event1", "webhook key is missing", id=f"{TEST}: no key"),
        pytest.param("ifttt://dummyID", "no events", id=f"{TEST}: no events"),
        pytest.param(
            "ifttt://dummyID/?events=event1&badquery=foo",
            "unknown query key",
            id=f"{TEST}: bad key",
        ),
        pytest.param(
            "ifttt://dummyID/?events=event1&messagevalue=8",
            "only values 1-3 are supported",
            id=f"{TEST}: messagevalue above 3",
        ),
        pytest.param(
            "ifttt://dummyID/?events=event1&messagevalue=0",
            "only values 1-3 are supported",
            id=f"{TEST}: messagevalue below 1",
        ),
        pytest.param(
            "ifttt://dummyID/?events=event1&titlevalue=4",
            "only values 1-3 or 0 (for disabling) are supported",
            id=f"{TEST}: titlevalue invalid",
        ),
        pytest.param(
            "ifttt://dummyID/?events=event1&messagevalue=2&titlevalue=2",
            "titlevalue cannot use the same number as messagevalue",
            id=f"{TEST}: titlevalue equals messagevalue",
        ),
        pytest.param(
            "ifttt://dummyID/?events=event1&messagevalue=invalid",
            "whole number",
            id=f"{TEST}: messagevalue not a number",
        ),
    ],
)
def test_refused(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        build(httpx.AsyncClient(), url)


async def test_one_request_per_event_with_the_message_in_value2() -> None:
    recorder = Recorder(lambda request: httpx.Response(200, text="Congratulations!"))
    async with mock_client(recorder) as client:
        channel = build(client, "ifttt://dummy/?events=event1,event2&value1=a&value3=c")
        result = await channel.send(make_message())
    assert result.ok
    assert [str(request.url) for request in recorder.requests] == [
        "https://maker.ifttt.com/trigger/event1/with/key/dummy",
        "https://maker.ifttt.com/trigger/event2/with/key/dummy",
    ]
    assert all(r.method == "POST" for r in recorder.requests)
    assert recorder.last.headers["content-type"] == "application/json"
    # no title value: the message value carries title and body
    expected = {"value1": "a", "value2": f"{TITLE}\n{BODY}", "value3": "c"}
    assert recorder.json(0) == recorder.json(1) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(
            "messagevalue=1", {"value1": f"{TITLE}\n{BODY}", "value2": "", "value3": ""}, id="1"
        ),
        pytest.param(
            "messagevalue=3&titlevalue=1&title=Ops",
            {"value1": f"Ops: {TITLE}", "value2": "", "value3": BODY},
            id="title-in-1",
        ),
    ],
)
async def test_value_fields(query: str, expected: dict[str, str]) -> None:
    # shoutrrr: "sets message to correct value field based on messagevalue" (ifttt_test.go)
    recorder = Recorder(lambda request: httpx.Response(200))
    async with mock_client(recorder) as client:
        assert (await build(client, f"ifttt://k/?events=e&{query}").send(make_message())).ok
    assert recorder.json() == expected


async def test_api_base() -> None:
    recorder = Recorder(lambda request: httpx.Response(200))
    async with mock_client(recorder) as client:
        channel = build(client, "ifttt://k/?events=e", api_base="http://127.0.0.1:9")
        assert (await channel.send(make_message())).ok
    assert str(recorder.last.url) == "http://127.0.0.1:9/trigger/e/with/key/k"


@pytest.mark.parametrize(
    ("status", "body", "outcome", "needle"),
    [
        pytest.param(
            401,
            {"errors": [{"message": "You sent an invalid key."}]},
            OutcomeClass.PERMANENT,
            "invalid key",
            id="bad-key",
        ),
        pytest.param(404, {}, OutcomeClass.PERMANENT, "404", id=f"{TEST}: not 2xx"),
        pytest.param(429, {}, OutcomeClass.RETRYABLE, "429", id="rate-limited"),
        pytest.param(503, {}, OutcomeClass.RETRYABLE, "503", id="server-error"),
    ],
)
async def test_answers(status: int, body: object, outcome: OutcomeClass, needle: str) -> None:
    answer = httpx.Response(status, json=body)
    async with mock_client(Recorder(lambda request: answer)) as client:
        result = await build(client, "ifttt://secretkey99/?events=e").send(make_message())
    assert result.outcome is outcome and needle in (result.error or "")
    assert "secretkey99" not in (result.error or "")


async def test_second_event_failing_says_the_first_was_sent() -> None:
    # shoutrrr: "should fail with multiple events when one errors" (ifttt_test.go)
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404 if "event2" in request.url.path else 200, text="Not Found")

    async with mock_client(Recorder(answer)) as client:
        result = await build(client, "ifttt://dummy/?events=event1,event2").send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert "request 2 of 2; earlier ones were sent" in (result.error or "")
