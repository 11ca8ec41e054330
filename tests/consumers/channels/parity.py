"""Helpers for the shoutrrr / Apprise parity tables: build a URL's channel, plan its request.

A ``Case`` is one URL from shoutrrr's (or Apprise's) own docs or tests, the
path of that file in its repository, and what eventbus must make of it: the
first request's method and URL, and a subset of its headers, JSON body or form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from consumers.channels._http import PlannedRequest
from consumers.channels.base import Channel
from consumers.channels.urls import parse_url

from .support import build, make_message

__all__ = ["Case", "case", "first_request", "made"]


@dataclass(frozen=True)
class Case:
    url: str
    source: str
    endpoint: str
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    warns: tuple[str, ...] = ()


def case(url: str, source: str, endpoint: str, *, id: str, **expected: Any) -> Any:
    return pytest.param(Case(url, source, endpoint, **expected), id=id)


def made(url: str) -> Channel:
    return build(httpx.AsyncClient(), url)


def first_request(channel: Channel) -> PlannedRequest:
    plan = getattr(channel, "plan")  # noqa: B009 - every channel of these tables plans
    requests: list[PlannedRequest] = plan(make_message(link="https://example.com/c1"))
    return requests[0]


def check(item: Case) -> None:
    """The URL's channel makes the request ``item`` describes, and warns as it says."""
    request = first_request(made(item.url))
    assert request.method == item.method, item.source
    assert str(request.url) == item.endpoint, item.source
    headers = {name.lower(): value for name, value in request.headers.items()}
    for name, value in item.headers.items():
        assert headers.get(name.lower()) == value, (name, item.source)
    body = request.json if isinstance(request.json, dict) else {}
    for key, value in item.json.items():
        assert body.get(key) == value, (key, item.source)
    form = dict(request.form or {})
    for key, value in item.form.items():
        assert form.get(key) == value, (key, item.source)
    warnings = parse_url(item.url).warnings()
    assert len(warnings) == len(item.warns), warnings
    for needle, warning in zip(item.warns, warnings, strict=True):
        assert needle in warning
