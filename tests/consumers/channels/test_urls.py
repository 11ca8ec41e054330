"""shoutrrr URL syntax: parts, percent-decoding, case-insensitive keys, clear errors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.channels.urls import SCHEMES, parse_url, split_list
from eventbus.errors import ChannelConfigError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "telegram://123:ABC@telegram?chats=@a,1",
            {"scheme": "telegram", "user": "123", "password": "ABC", "host": "telegram"},
            id="telegram-token-split-at-colon",
        ),
        pytest.param(
            "smtp://me:p%23ss%40w%2Frd@mail.example.com:587/?From=a@b.c",
            {"user": "me", "password": "p#ss@w/rd", "host": "mail.example.com", "port": 587},
            id="percent-decoded-password",
        ),
        pytest.param(
            "gotify://host/sub/path/TOKEN",
            {"host": "host", "path": ("sub", "path", "TOKEN"), "user": None},
            id="path-segments",
        ),
        pytest.param(
            "generic+https://example.com/hook",
            {"scheme": "generic", "subscheme": "https", "host": "example.com"},
            id="generic-plus-https",
        ),
        pytest.param(
            "pushover://shoutrrr:tok@UsErKeY/",
            {"host": "UsErKeY"},
            id="host-case-kept",
        ),
        pytest.param("teams://?host=x", {"host": "", "path": ()}, id="empty-authority"),
        pytest.param("DISCORD://t@1", {"scheme": "discord"}, id="scheme-case-insensitive"),
    ],
)
def test_parse_good(url: str, expected: dict[str, object]) -> None:
    parsed = parse_url(url)
    for key, value in expected.items():
        assert getattr(parsed, key) == value


def test_query_keys_are_case_insensitive_and_raw_kept() -> None:
    parsed = parse_url("generic://h/p?Template=json&@X-Api=1&$Foo=bar")
    assert parsed.get("TEMPLATE") == "json"
    assert parsed.query["template"] == "json"
    assert ("@X-Api", "1") in parsed.raw_query
    assert ("$Foo", "bar") in parsed.raw_query


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        pytest.param(
            "smtp://me:p#ss@host/",
            "percent-encode '#' as %23 in the user name or password",
            id="hash-in-password",
        ),
        pytest.param("matrix://:t@h/?rooms=#alias:srv", "rooms=%23alias", id="hash-in-query"),
        pytest.param("smtp://me:p/ss@host/", "'/'", id="slash-in-password"),
        pytest.param("smtp://me:p@ss@host/", "percent-encode '@' as %40", id="at-in-password"),
        pytest.param("smtp://me:pass@host:abc/", "port", id="bad-port"),
        pytest.param("smtp://me:pa%zzss@host/", "not a percent-escape", id="bad-escape"),
        pytest.param(
            "foo://x", "unknown URL scheme 'foo': use one of bark, discord", id="unknown-scheme"
        ),
        pytest.param("no scheme here", "has no scheme", id="no-scheme"),
        pytest.param("discord:token@id", "must start with discord://", id="missing-slashes"),
    ],
)
def test_parse_errors_name_the_problem(url: str, needle: str) -> None:
    with pytest.raises(ChannelConfigError) as info:
        parse_url(url)
    assert needle in str(info.value)


def test_errors_and_repr_never_show_credentials() -> None:
    parsed = parse_url("smtp://me:Sup3rSecret@host/?to=a@b.c")
    assert "Sup3rSecret" not in repr(parsed) and "Sup3rSecret" not in str(parsed)
    with pytest.raises(ChannelConfigError) as info:
        parse_url("smtp://me:Sup3r#Secret@host/")
    assert "Sup3r" not in str(info.value)


def test_flags_and_integers() -> None:
    parsed = parse_url("ntfy://h/t?Markdown=YES&cache=no&priority=9")
    assert parsed.flag("markdown", False) is True
    assert parsed.flag("cache", True) is False
    with pytest.raises(ChannelConfigError, match=r"whole number from 1 to 5"):
        parsed.integer("priority", 1, 5)
    with pytest.raises(ChannelConfigError, match=r"use yes or no"):
        parse_url("ntfy://h/t?cache=maybe").flag("cache", True)


def test_unknown_keys_are_listed() -> None:
    with pytest.raises(ChannelConfigError, match=r"unknown query key.*'colour'.*known keys"):
        parse_url("discord://t@1?colour=red").check_keys(["color"])


def test_split_list() -> None:
    assert split_list(" a, b,,c ") == ["a", "b", "c"]
    assert split_list(None) == []


@given(st.text(max_size=80))
def test_parse_raises_only_config_errors(tail: str) -> None:
    for scheme in ("smtp", "telegram", "generic+https"):
        with contextlib.suppress(ChannelConfigError):
            parse_url(f"{scheme}://{tail}")


@given(
    st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s),
    st.text(min_size=1, max_size=30),
)
def test_percent_encoded_credentials_round_trip(user: str, password: str) -> None:
    from urllib.parse import quote

    parsed = parse_url(f"smtp://{quote(user, safe='')}:{quote(password, safe='')}@host:25/")
    assert (parsed.user, parsed.password, parsed.host, parsed.port) == (user, password, "host", 25)


def test_every_scheme_has_an_example_that_parses() -> None:
    for scheme in SCHEMES:
        assert parse_url(f"{scheme}://example").scheme == scheme
