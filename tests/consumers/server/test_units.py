"""Pure pieces of the HTTP side: live message parsing, filters, buffers, tokens."""

from __future__ import annotations

import json

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request

import consumers.server
from consumers.server.auth import Principal, TokenAuth, split_param
from consumers.server.live import OVERFLOW, LiveFilter, Subscriber, parse_types
from eventbus.errors import EnvelopeError
from eventbus.live import parse_live, parse_stream_id
from eventbus.settings import ApiToken

from .conftest import event


def test_public_api_is_exported() -> None:
    for name in consumers.server.__all__:
        assert hasattr(consumers.server, name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1700000000000-0", (1700000000000, 0), id="full"),
        pytest.param("1700000000000-12", (1700000000000, 12), id="sequence"),
        pytest.param("1700000000000", (1700000000000, 0), id="ms-only"),
        pytest.param("0-0", (0, 0), id="zero"),
    ],
)
def test_stream_ids_compare_as_numbers(value: str, expected: tuple[int, int]) -> None:
    assert parse_stream_id(value) == expected


@pytest.mark.parametrize("value", ["", "-1", "abc", "1-2-3", "1-", "9" * 21, "1 -2"])
def test_bad_stream_ids(value: str) -> None:
    with pytest.raises(ValueError, match="stream id"):
        parse_stream_id(value)


def test_ordering_is_numeric_not_textual() -> None:
    assert parse_stream_id("9-0") < parse_stream_id("10-0")
    assert parse_stream_id("10-9") < parse_stream_id("10-10")


def test_parse_live_durable_and_transient() -> None:
    ev = event()
    durable = parse_live(json.dumps({"stream_id": "5-1", "event": json.loads(ev.to_json())}))
    assert durable.stream_id == "5-1"
    assert durable.event == ev
    assert json.loads(durable.data) == json.loads(ev.to_json())
    transient = parse_live('{"event":' + ev.to_json() + "}")
    assert transient.stream_id is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("[]", id="not-object"),
        pytest.param('{"stream_id": "1-0"}', id="no-event"),
        pytest.param('{"stream_id": 5, "event": {}}', id="numeric-id"),
        pytest.param('{"stream_id": "x", "event": {}}', id="bad-id"),
        pytest.param('{"event": {"event": "capsule.create"}}', id="invalid-envelope"),
        pytest.param('{"event": {}}' + " " * 300_000, id="too-large"),
    ],
)
def test_parse_live_rejects(raw: str) -> None:
    with pytest.raises(EnvelopeError):
        parse_live(raw)


@pytest.mark.parametrize(
    ("live_filter", "ev", "matches"),
    [
        pytest.param(LiveFilter(), event("t1"), True, id="everything"),
        pytest.param(LiveFilter(frozenset({"t1"})), event("t1"), True, id="team"),
        pytest.param(LiveFilter(frozenset({"t1"})), event("t2"), False, id="other-team"),
        pytest.param(LiveFilter(types=("capsule.*",)), event(), True, id="glob"),
        pytest.param(
            LiveFilter(types=("capsule.*",)),
            event(type_="template.snapshot.create"),
            False,
            id="glob-miss",
        ),
        pytest.param(
            LiveFilter(types=("*.create",)),
            event(type_="template.snapshot.create"),
            True,
            id="star-spans-dots",
        ),
        pytest.param(
            LiveFilter(types=("host.up", "host.down")),
            event(type_="host.down"),
            True,
            id="any-of",
        ),
        pytest.param(LiveFilter(types=("capsule.creat?",)), event(), True, id="question-mark"),
        pytest.param(LiveFilter(types=("capsule",)), event(), False, id="no-prefix-match"),
        pytest.param(LiveFilter(outcomes=frozenset({"error"})), event(), False, id="outcome"),
        pytest.param(
            LiveFilter(outcomes=frozenset({"none"})),
            event(outcome=None),
            True,
            id="outcome-none",
        ),
    ],
)
def test_live_filter(live_filter: LiveFilter, ev: object, matches: bool) -> None:
    assert live_filter.matches(ev) is matches  # type: ignore[arg-type]


@pytest.mark.parametrize("pattern", ["Capsule.*", "capsule/*", "a b", "x" * 200, "caps;ule"])
def test_bad_type_globs(pattern: str) -> None:
    with pytest.raises(ValueError, match="type filter"):
        parse_types([pattern])


async def test_subscriber_buffer_is_bounded() -> None:
    sub = Subscriber(LiveFilter(), limit=2)
    message = parse_live('{"event":' + event().to_json() + "}")
    assert sub.offer(message) and sub.offer(message)
    assert not sub.offer(message)
    assert sub.high_water == 2
    assert await sub.get() is message
    sub.end(OVERFLOW)
    assert await sub.get() is None  # ended: what was buffered is dropped
    assert sub.end_reason == OVERFLOW
    sub.end("later reason")
    assert sub.end_reason == OVERFLOW


def request(headers: dict[str, str] | None = None, query: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "headers": raw, "query_string": query.encode()})


AUTH = TokenAuth(
    [
        ApiToken(name="a", token="tok-a", teams=["team-a", "team-c"]),
        ApiToken(name="root", token="tok-root", teams=["*"]),
    ]
)


def test_tokens_from_header_or_query() -> None:
    assert AUTH.authenticate(request({"Authorization": "Bearer tok-a"})).name == "a"
    assert AUTH.authenticate(request({"Authorization": "bearer  tok-a "})).name == "a"
    assert AUTH.authenticate(request(query="token=tok-root")).teams is None
    # the header wins over the query
    principal = AUTH.authenticate(request({"Authorization": "Bearer tok-a"}, "token=tok-root"))
    assert principal.name == "a"


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        pytest.param({}, "", id="none"),
        pytest.param({"Authorization": "Bearer nope"}, "", id="unknown"),
        pytest.param({"Authorization": "Bearer"}, "", id="empty"),
        pytest.param({"Authorization": "Token tok-a"}, "", id="scheme"),
        pytest.param({}, "token=", id="empty-query"),
    ],
)
def test_refused_tokens(headers: dict[str, str], query: str) -> None:
    with pytest.raises(HTTPException) as caught:
        AUTH.authenticate(request(headers, query))
    assert caught.value.status_code == 401
    assert "tok-" not in caught.value.detail


def test_no_tokens_configured_says_so() -> None:
    with pytest.raises(HTTPException, match=r"http\.tokens"):
        TokenAuth([]).authenticate(request({"Authorization": "Bearer x"}))


def test_repr_hides_tokens() -> None:
    assert "tok-" not in repr(AUTH)


def test_team_scope() -> None:
    principal = Principal("a", frozenset({"team-a", "team-c"}))
    assert principal.scope([]) == {"team-a", "team-c"}
    assert principal.scope(["team-c"]) == {"team-c"}
    with pytest.raises(HTTPException) as caught:
        principal.scope(["team-a", "team-b"])
    assert caught.value.status_code == 403
    assert Principal("root", None).scope([]) is None
    assert Principal("root", None).scope(["x"]) == {"x"}


def test_split_param() -> None:
    assert split_param(["a,b", " c ,a", ""], "team") == ["a", "b", "c"]
    with pytest.raises(HTTPException):
        split_param([",".join(str(i) for i in range(40))], "team")
