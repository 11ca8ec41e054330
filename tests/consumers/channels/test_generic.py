"""generic / generic+https: headers, extra JSON fields, forwarded query, honest content types."""

from __future__ import annotations

import base64

import httpx
import pytest

from consumers.channels.generic import GenericChannel
from eventbus.errors import ChannelConfigError

from .support import Recorder, build, make_message, mock_client


@pytest.mark.parametrize(
    ("url", "endpoint", "json_template"),
    [
        pytest.param("generic://example.com/hook", "https://example.com/hook", False, id="plain"),
        pytest.param(
            "generic://ha:8123/api/webhook/ID?template=json&disabletls=yes",
            "http://ha:8123/api/webhook/ID",
            True,
            id="home-assistant",
        ),
        pytest.param(
            "generic+https://example.com/api/v1/postStuff?foo=1&_template=x",
            "https://example.com/api/v1/postStuff?foo=1&template=x",
            False,
            id="plus-https-forwarded",
        ),
    ],
)
def test_url_good(url: str, endpoint: str, json_template: bool) -> None:
    channel = build(httpx.AsyncClient(), url)
    assert isinstance(channel, GenericChannel)
    assert (channel.endpoint, channel.json_template) == (endpoint, json_template)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param("generic://h/p?template=xml", "template", id="bad-template"),
        pytest.param(
            "generic://h/p?contenttype=application/json",
            "add template=json",
            id="json-label-on-text",
        ),
        pytest.param("generic://h/p?method=TRACE", "method", id="bad-method"),
        pytest.param("generic+ftp://h/p", "not supported", id="bad-subscheme"),
    ],
)
def test_url_bad(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError, match=needle):
        build(httpx.AsyncClient(), url)


async def test_json_template_request() -> None:
    recorder = Recorder(lambda request: httpx.Response(200))
    async with mock_client(recorder) as client:
        url = (
            "generic://u:pw123@example.com/in?template=json&titlekey=subject&messagekey=content"
            "&@X-Api-Key=abc123&$source=eventbus&method=PUT"
        )
        await build(client, url).send(make_message())
    request = recorder.last
    assert request.method == "PUT"
    assert str(request.url) == "https://example.com/in"
    assert request.headers["x-api-key"] == "abc123"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"u:pw123").decode()
    assert recorder.json() == {
        "source": "eventbus",
        "subject": "capsule.create failed: capsule c1 (team-1)",
        "content": "Outcome: error\nError: quota exceeded",
    }


async def test_plain_text_is_labelled_plain_text() -> None:
    recorder = Recorder(lambda request: httpx.Response(204))
    async with mock_client(recorder) as client:
        await build(client, "generic+https://example.com/x").send(make_message(body="b"))
    assert recorder.last.headers["content-type"] == "text/plain; charset=utf-8"
    assert recorder.last.content == b"capsule.create failed: capsule c1 (team-1)\nb"
