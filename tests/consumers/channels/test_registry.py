"""The one table of channel types."""

from __future__ import annotations

import httpx
import pytest

from consumers.channels.base import ChannelDeps
from consumers.channels.registry import CHANNEL_TYPES, channel_warnings, create_channel
from consumers.channels.urls import SCHEMES
from consumers.channels.webhook import warnings as webhook_warnings
from eventbus.errors import ChannelConfigError
from eventbus.settings import ChannelSpec


def test_every_url_scheme_selects_exactly_one_type() -> None:
    claimed = [scheme for kind in CHANNEL_TYPES.values() for scheme in kind.schemes]
    assert sorted(claimed) == sorted(SCHEMES)


def test_names_are_the_keys() -> None:
    assert all(name == kind.name for name, kind in CHANNEL_TYPES.items())


def test_warnings_come_from_the_table() -> None:
    spec = ChannelSpec(name="hook", type="webhook", url="http://hooks.example.com/x")
    assert CHANNEL_TYPES["webhook"].warnings is webhook_warnings
    assert channel_warnings(spec) == webhook_warnings(spec)
    assert channel_warnings(ChannelSpec(name="out", type="console")) == []


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ChannelConfigError, match="use one of console, discord"):
        # Building makes no request: the client is never opened.
        create_channel(ChannelSpec(name="x", type="pager"), ChannelDeps(http=httpx.AsyncClient()))
