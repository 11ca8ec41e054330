"""How a webhook target is shown: the path past its first segment is masked.

Receivers put capability tokens in the path (``/services/T0/B0/XXXX``); the
target appears in logs, records, ``channels list``, ``config check`` and the
API, so only ``scheme://host[:port]/first-segment`` is shown unless the
operator sets ``show_path: true``.
"""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.base import ChannelDeps
from consumers.channels.registry import channel_warnings, create_channel
from consumers.channels.webhook import describe_url
from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec, SecuritySettings

TOKEN = "Tok3nInThePath9x"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(f"https://h.example/services/T0/{TOKEN}", "https://h.example/services/***"),
        pytest.param(f"https://h.example/{TOKEN}/x", f"https://h.example/{TOKEN}/***", id="first"),
        pytest.param("https://h.example/eventbus", "https://h.example/eventbus", id="one-segment"),
        pytest.param("https://h.example/hooks/", "https://h.example/hooks/", id="trailing-slash"),
        pytest.param("https://h.example", "https://h.example/", id="no-path"),
        pytest.param(f"http://h.example:8080/in/{TOKEN}?q=s", "http://h.example:8080/in/***"),
        pytest.param(f"https://[2001:db8::1]:9/in/{TOKEN}", "https://[2001:db8::1]:9/in/***"),
        pytest.param(f"https://u:pw@h.example/a/{TOKEN}", "https://h.example/a/***", id="creds"),
    ],
)
def test_describe_url_keeps_the_first_segment_only(url: str, shown: str) -> None:
    assert describe_url(httpx.URL(url)) == shown


def test_show_path_keeps_the_whole_path_but_never_the_query() -> None:
    url = httpx.URL(f"https://h.example/services/T0/{TOKEN}?sig=abc")
    assert describe_url(url, show_path=True) == f"https://h.example/services/T0/{TOKEN}"


def build(url: str, security: SecuritySettings | None = None, **options: object) -> object:
    spec = ChannelSpec(name="hook", type="webhook", url=url, **options)
    deps = ChannelDeps(http=httpx.AsyncClient(), security=security or SecuritySettings())
    return create_channel(spec, deps)


def test_channel_describe_and_repr_hide_the_path_token() -> None:
    channel = build(f"https://hooks.example.com/services/T0/{TOKEN}")
    assert channel.describe() == "https://hooks.example.com/services/***"  # type: ignore[attr-defined]
    assert TOKEN not in repr(channel)
    assert channel.mask(f"GET /services/T0/{TOKEN} failed") == "GET /services/*** failed"  # type: ignore[attr-defined]


def test_show_path_option() -> None:
    channel = build(f"https://hooks.example.com/services/T0/{TOKEN}", show_path=True)
    assert channel.describe() == f"https://hooks.example.com/services/T0/{TOKEN}"  # type: ignore[attr-defined]
    with pytest.raises(ChannelConfigError, match="'show_path' must be true or false"):
        build("https://hooks.example.com/in", show_path="yes")


def test_configuration_errors_and_warnings_hide_the_path_token() -> None:
    with pytest.raises(ChannelConfigError) as refused:
        build(f"http://127.0.0.1:8080/in/{TOKEN}")  # a private target, refused
    assert "http://127.0.0.1:8080/in/***" in str(refused.value)
    assert TOKEN not in str(refused.value)
    with pytest.raises(ChannelConfigError) as scheme:
        build(f"ftp://h.example/in/{TOKEN}")
    assert TOKEN not in str(scheme.value)
    spec = ChannelSpec(name="hook", type="webhook", url=f"http://h.example/in/{TOKEN}")
    (plain_http, *_) = [w for w in channel_warnings(spec) if "plain http" in w]
    assert "http://h.example/in/***" in plain_http and TOKEN not in plain_http
