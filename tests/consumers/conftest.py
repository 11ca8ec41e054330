"""Fixtures shared by the consumer tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .telegram_fake import FakeBotApi, serve_fake_bot_api


@pytest.fixture
async def bot_api() -> AsyncIterator[tuple[FakeBotApi, str]]:
    async with serve_fake_bot_api() as served:
        yield served
