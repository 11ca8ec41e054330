"""The one send path: on an OutboundClient every HTTP channel goes straight to the transport."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from consumers.channels._http import _bytes_request
from consumers.channels.base import OutcomeClass
from consumers.outbound import OutboundClient

from .support import Recorder, build, make_message

URLS = [
    pytest.param("telegram://123456:ABCdefGHIjklMNOpqr@telegram?chats=42", id="telegram"),
    pytest.param("discord://TOKENabcdefghijklmnop@123456789", id="discord"),
    pytest.param("ntfy://ntfy.example.com/alerts", id="ntfy"),
    pytest.param("gotify://gotify.example.com/AJFh0x8Y3l6fEc2", id="gotify"),
    pytest.param("mattermost://mm.example.com/TOKENabcdefghij", id="mattermost"),
    pytest.param("generic://hooks.example.com/in?template=json", id="generic"),
]


def refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("AsyncClient.send used")


@pytest.mark.parametrize("url", URLS)
async def test_requests_skip_the_client(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    async with OutboundClient(transport=httpx.MockTransport(recorder)) as client:
        monkeypatch.setattr(client, "send", refuse)
        result = await build(client, url).send(make_message())
    assert result.outcome is OutcomeClass.DELIVERED, result
    assert len(recorder.requests) == 1
    assert recorder.last.extensions["timeout"] == httpx.Timeout(5.0).as_dict()


async def test_transport_errors_are_classified_by_the_one_table() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.UnsupportedProtocol("no such scheme", request=request)

    async with OutboundClient(transport=httpx.MockTransport(fail)) as client:
        result = await build(client, "ntfy://ntfy.example.com/alerts").send(make_message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert result.error is not None and "UnsupportedProtocol" in result.error


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"content-type": "application/json", "webhook-id": "msg_1"}, id="plain"),
        pytest.param({"Host": "inner.example", "X-A": "1"}, id="own-host"),
        pytest.param({"Content-Length": "2"}, id="own-length"),
        pytest.param({"X-Name": "caf\u00e9"}, id="not-ascii"),
    ],
)
def test_a_body_request_is_the_one_httpx_builds(headers: dict[str, str]) -> None:
    url = httpx.URL("https://hooks.example.com:8443/in?x=1")
    timeouts = httpx.Timeout(5.0).as_dict()

    def built(make: Any) -> tuple[Any, ...]:
        try:
            request = make()
        except UnicodeEncodeError as exc:
            return ("refused", type(exc))
        return (request.method, request.url, request.headers.raw, request.content)

    ours = built(lambda: _bytes_request("POST", url, headers, b"{}", timeouts))
    theirs = built(
        lambda: httpx.Request(
            "POST", url, headers=headers, content=b"{}", extensions={"timeout": timeouts}
        )
    )
    assert ours == theirs
