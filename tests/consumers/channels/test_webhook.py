"""The webhook channel: Standard Webhooks signing, classification, redaction, config."""

from __future__ import annotations

import base64
import gzip
import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

import eventbus
from consumers.channels.base import Channel, ChannelDeps, Message, OutcomeClass
from consumers.channels.registry import build_channel
from consumers.channels.webhook import WebhookChannel, create, decode_secret, sign, warnings
from consumers.netguard import ForbiddenTarget
from consumers.outbound import OutboundClient, make_http_client
from eventbus.envelope import Event
from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec, SecuritySettings


def make_secret(size: int = 32) -> str:
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


SECRET = make_secret()
OLD_SECRET = make_secret(24)
URL = "https://hooks.example.com/in/eventbus?token=query-secret-value"
TOKEN = "Bearer header-secret-value"

Handler = Callable[[httpx.Request], httpx.Response]


EVENT = Event(
    event="capsule.create",
    outcome="success",
    team_id="team-1",
    actor={"type": "user", "id": "u1"},
    resource={"id": "c1", "type": "capsule"},
    metadata={"region": "eu"},
)


def message(delivery_id: str = "msg_01HZX") -> Message:
    return Message(title="t", body="b", event=EVENT, delivery_id=delivery_id)


class Recorder:
    """A MockTransport handler that keeps every request and answers from a function."""

    def __init__(self, answer: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (lambda request: httpx.Response(204))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture(params=["client", "transport"])
async def http(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[[Handler | None], tuple[httpx.AsyncClient, Recorder]]]:
    """Clients on a MockTransport; every test runs through the client and, as the
    daemon's client does, straight through the transport it exposes."""
    clients: list[httpx.AsyncClient] = []

    def make(answer: Handler | None = None) -> tuple[httpx.AsyncClient, Recorder]:
        recorder = Recorder(answer)
        transport = httpx.MockTransport(recorder)
        client = (
            OutboundClient(transport=transport)
            if request.param == "transport"
            else httpx.AsyncClient(transport=transport)
        )
        clients.append(client)
        return client, recorder

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def idle() -> AsyncIterator[httpx.AsyncClient]:
    """A client for channels that are built but never used."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(Recorder())) as client:
        yield client


def spec(**options: Any) -> ChannelSpec:
    fields: dict[str, Any] = {"name": "ops-hook", "type": "webhook", "url": URL}
    fields.update(options)
    return ChannelSpec(**{k: v for k, v in fields.items() if v is not None})


def channel(client: httpx.AsyncClient, **options: Any) -> WebhookChannel:
    return create(spec(**options), ChannelDeps(http=client))


def headers_of(request: httpx.Request) -> dict[str, str]:
    return dict(request.headers)


# --- signing -----------------------------------------------------------------


async def test_signature_verifies_with_reference_library(http: Any) -> None:
    client, recorder = http()
    result = await channel(client, secret=SECRET).send(message())
    assert result.outcome is OutcomeClass.DELIVERED
    sent = recorder.last
    payload = Webhook(SECRET).verify(sent.content, headers_of(sent))
    assert payload == json.loads(EVENT.to_json())
    assert sent.headers["webhook-signature"].startswith("v1,")


async def test_rotation_every_secret_verifies(http: Any) -> None:
    client, recorder = http()
    await channel(client, secret=[OLD_SECRET, SECRET]).send(message())
    sent = recorder.last
    assert len(sent.headers["webhook-signature"].split(" ")) == 2
    for secret in (OLD_SECRET, SECRET):
        Webhook(secret).verify(sent.content, headers_of(sent))
    with pytest.raises(WebhookVerificationError):
        Webhook(make_secret()).verify(sent.content, headers_of(sent))


async def test_no_secret_no_signature(http: Any) -> None:
    client, recorder = http()
    await channel(client).send(message("msg_x"))
    sent = recorder.last
    assert "webhook-signature" not in sent.headers
    assert sent.headers["webhook-id"] == "msg_x"
    assert sent.headers["webhook-timestamp"].isdigit()


def test_sign_matches_reference_library() -> None:
    body = b'{"a":1}'
    expected = Webhook(SECRET).sign("msg_1", datetime.fromtimestamp(1700000000, UTC), body.decode())
    assert sign(decode_secret(SECRET), "msg_1", 1700000000, body) == expected


def test_unpadded_secret_is_accepted() -> None:
    padded = "whsec_" + base64.b64encode(b"k" * 32).decode()
    assert padded.endswith("=")
    assert decode_secret(padded.rstrip("=")) == b"k" * 32


async def test_request_shape(http: Any) -> None:
    client, recorder = http()
    clock_value = 1_700_000_123.9
    ch = create(
        spec(headers={"Authorization": TOKEN, "X-Team": "ops", "X-Num": 5}),
        ChannelDeps(http=client),
    )
    ch._clock = lambda: clock_value
    await ch.send(message("msg_shape"))
    sent = recorder.last
    assert sent.method == "POST"
    assert str(sent.url) == URL
    assert sent.content == EVENT.to_json().encode()
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"] == f"eventbus/{eventbus.__version__}"
    assert sent.headers["authorization"] == TOKEN
    assert sent.headers["x-team"] == "ops"
    assert sent.headers["x-num"] == "5"
    assert sent.headers["webhook-id"] == "msg_shape"
    assert sent.headers["webhook-timestamp"] == "1700000123"


async def test_delivery_id_is_stable_across_retries(http: Any) -> None:
    client, recorder = http(lambda request: httpx.Response(503))
    ch = channel(client, secret=SECRET)
    times = iter([1_700_000_000.0, 1_700_000_300.0])
    ch._clock = lambda: next(times)
    msg = message("msg_stable")
    await ch.send(msg)
    await ch.send(msg)
    first, second = recorder.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_stable"
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]


async def test_timeout_from_spec_or_deps(http: Any) -> None:
    client, recorder = http()
    await channel(client).send(message())
    assert recorder.last.extensions["timeout"]["read"] == 15.0
    await create(spec(timeout="2.5s"), ChannelDeps(http=client)).send(message())
    assert recorder.last.extensions["timeout"]["read"] == 2.5
    await create(spec(), ChannelDeps(http=client, timeout=7)).send(message())
    assert recorder.last.extensions["timeout"]["connect"] == 7


# --- classification ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after", "disable", "error_part"),
    [
        pytest.param(200, {}, OutcomeClass.DELIVERED, None, False, None, id="200"),
        pytest.param(204, {}, OutcomeClass.DELIVERED, None, False, None, id="204"),
        pytest.param(
            301,
            {"location": "https://new.example.com/"},
            OutcomeClass.PERMANENT,
            None,
            False,
            "redirects are not followed",
            id="301-permanent",
        ),
        pytest.param(
            307, {}, OutcomeClass.PERMANENT, None, False, "configure the final URL", id="307"
        ),
        pytest.param(400, {}, OutcomeClass.PERMANENT, None, False, "HTTP 400", id="400"),
        pytest.param(401, {}, OutcomeClass.PERMANENT, None, False, "HTTP 401", id="401"),
        pytest.param(404, {}, OutcomeClass.PERMANENT, None, False, "HTTP 404", id="404"),
        pytest.param(408, {}, OutcomeClass.RETRYABLE, None, False, "HTTP 408", id="408"),
        pytest.param(
            410, {}, OutcomeClass.PERMANENT, None, True, "HTTP 410", id="410-disables-channel"
        ),
        pytest.param(425, {}, OutcomeClass.RETRYABLE, None, False, "HTTP 425", id="425"),
        pytest.param(
            429,
            {"retry-after": "30"},
            OutcomeClass.RETRYABLE,
            30.0,
            False,
            "HTTP 429",
            id="429-retry-after",
        ),
        pytest.param(500, {}, OutcomeClass.RETRYABLE, None, False, "HTTP 500", id="500"),
        pytest.param(
            503,
            {"retry-after": "120"},
            OutcomeClass.RETRYABLE,
            120.0,
            False,
            "HTTP 503",
            id="503-retry-after",
        ),
        pytest.param(504, {}, OutcomeClass.RETRYABLE, None, False, "HTTP 504", id="504"),
    ],
)
async def test_status_classification(
    http: Any,
    status: int,
    headers: dict[str, str],
    outcome: OutcomeClass,
    retry_after: float | None,
    disable: bool,
    error_part: str | None,
) -> None:
    client, _ = http(lambda request: httpx.Response(status, headers=headers, content=b"why"))
    result = await channel(client, secret=SECRET).send(message())
    assert result.outcome is outcome
    assert result.status == status
    assert result.retry_after == retry_after
    assert result.disable_channel is disable
    assert result.latency >= 0
    if error_part is None:
        assert result.error is None
    else:
        assert result.error is not None
        assert error_part in result.error
    # A 204 has no body (HTTP says so; aiohttp does not read one): nothing to keep.
    assert result.response_excerpt == (None if status == 204 else "why")


def _raise(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def _forbidden_connect_error() -> Exception:
    refused = ForbiddenTarget(
        "refusing to connect to 'hooks.example.com': it resolves to 10.0.0.5 (private)",
        host="hooks.example.com",
        address="10.0.0.5",
        reason="private",
    )
    error = httpx.ConnectError("Cannot connect to host hooks.example.com:443")
    error.__cause__ = refused
    return error


@pytest.mark.parametrize(
    ("exc", "outcome", "error_part"),
    [
        pytest.param(
            httpx.ReadTimeout("read timed out"),
            OutcomeClass.RETRYABLE,
            "ReadTimeout (timeout 15s)",
            id="read-timeout",
        ),
        pytest.param(
            httpx.ConnectTimeout("connect timed out"),
            OutcomeClass.RETRYABLE,
            "ConnectTimeout",
            id="connect-timeout",
        ),
        pytest.param(
            httpx.PoolTimeout(""), OutcomeClass.RETRYABLE, "PoolTimeout", id="pool-timeout"
        ),
        pytest.param(
            httpx.ConnectError("connection refused"),
            OutcomeClass.RETRYABLE,
            "connection refused",
            id="connect-error",
        ),
        pytest.param(
            httpx.RemoteProtocolError("server hung up"),
            OutcomeClass.RETRYABLE,
            "server hung up",
            id="protocol-error",
        ),
        pytest.param(
            httpx.ReadError("reset"), OutcomeClass.RETRYABLE, "ReadError", id="read-error"
        ),
        pytest.param(
            httpx.UnsupportedProtocol("no"),
            OutcomeClass.PERMANENT,
            "UnsupportedProtocol",
            id="unsupported-protocol",
        ),
        pytest.param(
            _forbidden_connect_error(),
            OutcomeClass.PERMANENT,
            "resolves to 10.0.0.5",
            id="ssrf-refused",
        ),
        pytest.param(TimeoutError(), OutcomeClass.RETRYABLE, "TimeoutError", id="bare-timeout"),
    ],
)
async def test_transport_errors_become_results(
    http: Any, exc: Exception, outcome: OutcomeClass, error_part: str
) -> None:
    client, _ = http(_raise(exc))
    result = await channel(client).send(message())
    assert result.outcome is outcome
    assert result.status is None
    assert result.error is not None
    assert error_part in result.error
    assert result.disable_channel is False


async def test_empty_body_is_not_read(http: Any) -> None:
    class Unread(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[override]
            raise AssertionError("body read")
            yield b""  # pragma: no cover

    client, _ = http(
        lambda request: httpx.Response(200, headers={"content-length": "0"}, stream=Unread())
    )
    result = await channel(client).send(message())
    assert result.outcome is OutcomeClass.DELIVERED and result.response_excerpt is None


async def test_large_response_keeps_only_an_excerpt(http: Any) -> None:
    client, _ = http(lambda request: httpx.Response(500, content=b"x" * 1_000_000))
    result = await channel(client).send(message())
    assert result.response_excerpt == "x" * 512


async def test_compressed_response_excerpt_is_decoded(http: Any) -> None:
    body = gzip.compress(b"upstream is down")
    client, _ = http(
        lambda request: httpx.Response(502, content=body, headers={"content-encoding": "gzip"})
    )
    result = await channel(client).send(message())
    assert result.outcome is OutcomeClass.RETRYABLE
    assert result.response_excerpt == "upstream is down"


# --- secrets stay secret -----------------------------------------------------

SECRET_URL = "https://alice:url-password-1@hooks.example.com/in?token=query-secret-value&v=1"
SECRETS = ("url-password-1", "query-secret-value", "header-secret-value", SECRET[6:], SECRET)


def secret_channel(client: httpx.AsyncClient) -> WebhookChannel:
    return create(
        spec(url=SECRET_URL, secret=SECRET, headers={"X-Api-Key": TOKEN}),
        ChannelDeps(http=client),
    )


def assert_clean(text: str | None) -> None:
    assert text is not None
    for secret in SECRETS:
        assert secret not in text


async def test_secrets_not_in_describe_or_repr(http: Any) -> None:
    client, _ = http()
    ch = secret_channel(client)
    assert ch.describe() == "https://hooks.example.com/in"
    assert_clean(ch.describe())
    assert_clean(repr(ch))
    assert "ops-hook" in repr(ch)


async def test_secrets_not_in_errors(http: Any) -> None:
    leaky = httpx.ConnectError(f"failed {SECRET_URL} with {TOKEN} and {SECRET}")
    client, _ = http(_raise(leaky))
    result = await secret_channel(client).send(message())
    assert result.outcome is OutcomeClass.RETRYABLE
    assert_clean(result.error)
    assert "hooks.example.com/in" in (result.error or "")


async def test_secrets_not_in_echoed_response(http: Any) -> None:
    # Some receivers (httpbin and friends) echo the request back.
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"url": str(request.url), "headers": dict(request.headers)})

    client, _ = http(echo)
    result = await secret_channel(client).send(message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert_clean(result.response_excerpt)
    assert_clean(result.error)


async def test_basic_auth_from_url_is_sent(http: Any) -> None:
    client, recorder = http()
    await create(spec(url=SECRET_URL), ChannelDeps(http=client)).send(message())
    expected = base64.b64encode(b"alice:url-password-1").decode()
    assert recorder.last.headers["authorization"] == f"Basic {expected}"


# --- configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message_part"),
    [
        pytest.param({"url": None}, "'url' is required", id="no-url"),
        pytest.param({"url": "ftp://files.example.com/x"}, "must start with https://", id="scheme"),
        pytest.param({"url": "https://"}, "no host", id="no-host"),
        pytest.param({"url": "https://example.com:x/"}, "not a valid URL", id="invalid-url"),
        pytest.param({"url": "https://exa mple.com/"}, "not a valid host name", id="bad-host"),
        pytest.param(
            {"url": SECRET_URL, "headers": {"Authorization": TOKEN}}, "keep one", id="two-auths"
        ),
        pytest.param(
            {"url": "http://10.0.0.5/hook"}, "10.0.0.5 (private network", id="private-literal"
        ),
        pytest.param(
            {"url": "http://[::1]/hook"}, "security.allow_private_targets", id="loopback-literal"
        ),
        pytest.param(
            {"secret": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
            "does not start with 'whsec_'",
            id="secret-prefix",
        ),
        pytest.param({"secret": "whsec_not*base64!!"}, "not valid base64", id="secret-base64"),
        pytest.param(
            {"secret": "whsec_" + base64.b64encode(b"k" * 16).decode()},
            "16 bytes, not 24-64",
            id="secret-short",
        ),
        pytest.param(
            {"secret": "whsec_" + base64.b64encode(b"k" * 65).decode()},
            "65 bytes",
            id="secret-long",
        ),
        pytest.param({"secret": [SECRET, "whsec_bad"]}, "secret #2", id="secret-list-names-entry"),
        pytest.param({"secret": []}, "empty list", id="secret-empty-list"),
        pytest.param({"secret": 12345}, "must be strings", id="secret-not-string"),
        pytest.param({"sekret": SECRET}, "unknown option(s) 'sekret'", id="unknown-option"),
        pytest.param({"headers": ["X-A: b"]}, "'headers' must be a map", id="headers-not-map"),
        pytest.param({"headers": {"webhook-id": "x"}}, "set by the channel", id="header-reserved"),
        pytest.param(
            {"headers": {"Content-Type": "text/plain"}},
            "set by the channel",
            id="header-content-type",
        ),
        pytest.param(
            {"headers": {"Bad Name": "x"}}, "not a valid HTTP header name", id="header-name"
        ),
        pytest.param({"headers": {"X-Token": "a\r\nInjected: 1"}}, "line break", id="header-crlf"),
        pytest.param({"headers": {"X-Obj": {"a": 1}}}, "string value", id="header-value-type"),
    ],
)
def test_config_errors(idle: httpx.AsyncClient, options: dict[str, Any], message_part: str) -> None:
    with pytest.raises(ChannelConfigError) as info:
        create(spec(**options), ChannelDeps(http=idle))
    text = str(info.value)
    assert "'ops-hook'" in text
    assert message_part in text
    assert isinstance(info.value, ValueError)
    for value in options.values():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and item.startswith("whsec_"):
                assert item[6:] not in text, "the secret was echoed"
            if isinstance(item, str) and "\r\n" in item:
                assert item not in text


def test_private_literal_allowed_by_settings(idle: httpx.AsyncClient) -> None:
    security = SecuritySettings(allow_private_targets=True)
    ch = create(spec(url="http://10.0.0.5/hook"), ChannelDeps(http=idle, security=security))
    assert ch.describe() == "http://10.0.0.5/hook"


def test_registry_builds_a_channel(idle: httpx.AsyncClient) -> None:
    ch = build_channel(spec(secret=SECRET), ChannelDeps(http=idle))
    assert isinstance(ch, WebhookChannel)
    assert isinstance(ch, Channel)
    assert ch.type == "webhook"
    assert ch.name == "ops-hook"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({"secret": SECRET}, [], id="signed-https"),
        pytest.param({}, ["has no secret"], id="no-secret"),
        pytest.param(
            {"secret": SECRET, "url": "http://hooks.example.com/x?token=t0ps3cret"},
            ["plain http"],
            id="plain-http",
        ),
        pytest.param(
            {"url": "http://hooks.example.com/"}, ["has no secret", "plain http"], id="both"
        ),
    ],
)
def test_warnings(options: dict[str, Any], expected: list[str]) -> None:
    found = warnings(spec(**options))
    assert len(found) == len(expected)
    for text, part in zip(found, expected, strict=True):
        assert part in text
        assert "'ops-hook'" in text
        assert "t0ps3cret" not in text


# --- through the production client -------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A local Standard Webhooks receiver that verifies what it gets."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = Webhook(SECRET).verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            return web.Response(status=401, text=str(exc))
        received.append({"payload": payload, "headers": dict(request.headers)})
        return web.Response(status=204)

    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=308, headers={"Location": "https://elsewhere.example.com/"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()


async def test_end_to_end_through_production_client(
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    base, received = receiver
    security = SecuritySettings(allow_private_targets=True)
    async with make_http_client(security, timeout=5) as client:
        deps = ChannelDeps(http=client, security=security)
        ch = create(spec(url=f"{base}/hook", secret=[OLD_SECRET, SECRET]), deps)
        result = await ch.send(message("msg_e2e"))
        moved = await create(spec(url=f"{base}/moved"), deps).send(message())
    assert result.outcome is OutcomeClass.DELIVERED, result
    assert result.status == 204
    assert received[0]["headers"]["webhook-id"] == "msg_e2e"
    assert received[0]["payload"]["event"] == "capsule.create"
    assert moved.outcome is OutcomeClass.PERMANENT
    assert "https://elsewhere.example.com/" in (moved.error or "")


async def test_guard_refusal_is_a_permanent_result() -> None:
    # The channel was configured with a name; at send time it resolves to
    # loopback (the DNS rebinding case): refused, permanently, with the fix.
    security = SecuritySettings()
    async with make_http_client(security, timeout=5) as client:
        ch = create(
            spec(url="http://localhost:1/hook"), ChannelDeps(http=client, security=security)
        )
        result = await ch.send(message())
    assert result.outcome is OutcomeClass.PERMANENT
    assert result.error is not None
    assert "'localhost'" in result.error
    assert "security.allow_private_targets" in result.error


async def test_exposed_transport_skips_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    transport = httpx.MockTransport(recorder)
    async with OutboundClient(transport=transport) as client:

        async def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("AsyncClient.send used")

        monkeypatch.setattr(client, "send", refuse)
        result = await channel(client, secret=SECRET).send(message())
        assert result.ok and len(recorder.requests) == 1
        assert recorder.last.extensions["timeout"] == httpx.Timeout(15.0).as_dict()
        # Credentials in the URL travel as a Basic header on the same path.
        result = await create(spec(url=SECRET_URL), ChannelDeps(http=client)).send(message())
        assert result.ok, result.error
        sent = recorder.last
        assert sent.url.userinfo == b""
        expected = base64.b64encode(b"alice:url-password-1").decode()
        assert sent.headers["authorization"] == f"Basic {expected}"


async def test_production_client_exposes_its_transport() -> None:
    async with make_http_client(SecuritySettings(), timeout=5) as client:
        assert isinstance(client, OutboundClient)
        assert client.transport is not None
