"""The dashboard's Channels view in headless Chromium: the per-minute chart of a
channel with deliveries and failures, Test, Disable then Enable; a read token
sees no buttons; another team's channels never reach the page."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import pytest
import redis.asyncio as aioredis

from consumers.breaker import Breaker
from consumers.channels.base import OutcomeClass, SendResult
from consumers.store import BreakerStore, DeliveryStore
from eventbus.keys import Keys
from eventbus.settings import ChannelSpec

from . import test_dashboard
from .conftest import TOKEN_A, TOKEN_B, TOKEN_READ_A, Running, StartServer
from .test_dashboard import WAIT, _connect

pytestmark = [pytest.mark.integration, pytest.mark.browser]
browser = test_dashboard.browser  # the fixture: headless Chromium, or a skip saying why

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

YAML = {"channels": [{"name": "ops-console", "type": "console"}]}
OK = SendResult(OutcomeClass.DELIVERED, status=200)
DOWN = SendResult(OutcomeClass.RETRYABLE, status=503, error="HTTP 503")


async def _channels(app: Running, redis: aioredis.Redis) -> None:
    """a-console for team a with 3 delivered and 2 failed attempts; b-console for team b."""
    for token, body in [
        (TOKEN_A, {"name": "a-console", "type": "console"}),
        (TOKEN_B, {"name": "b-console", "type": "console"}),
    ]:
        made = await app.client.post(
            "/v1/channels", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert made.status_code == 201, made.text
    spec = ChannelSpec.model_validate({"name": "a-console", "type": "console"})
    settings = app.settings.model_copy(update={"channels": [*app.settings.channels, spec]})
    breaker = Breaker(settings, BreakerStore(redis, Keys(settings.broker.prefix)))
    for result in (OK, DOWN, OK, DOWN, OK):
        breaker.observe("a-console", result)
    await breaker.flush()


def _rows(driver: Any, names: list[str], **wanted: str) -> dict[str, dict[str, Any]]:
    """The channel rows once they are ``names`` and row ``wanted[0]`` has ``wanted`` attrs."""

    def read(d: Any) -> dict[str, dict[str, Any]] | Literal[False]:
        rows = d.find_elements(By.CSS_SELECTOR, "#channels tbody tr")
        if [row.get_attribute("data-name") for row in rows] != names:
            return False
        found = {}
        for row in rows:
            charts = row.find_elements(By.CSS_SELECTOR, "svg.chart")
            found[row.get_attribute("data-name")] = {
                "cells": [td.text for td in row.find_elements(By.TAG_NAME, "td")],
                "buttons": [b.text for b in row.find_elements(By.TAG_NAME, "button")],
                "disabled": row.get_attribute("data-disabled"),
                "result": " ".join(s.text for s in row.find_elements(By.CLASS_NAME, "test-result")),
                "chart": {
                    key: charts[0].get_attribute(f"data-{key}")
                    for key in ("delivered", "failed", "minutes", "peak")
                }
                if charts
                else None,
                "paths": [
                    p.get_attribute("d") for p in row.find_elements(By.CSS_SELECTOR, "svg path")
                ],
            }
        for name, attrs in wanted.items():
            if found[name.replace("_", "-")]["disabled"] != attrs:
                return False
        return found

    wait = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])
    rows: dict[str, dict[str, Any]] = wait.until(read)
    return rows


def _click(driver: Any, channel: str, label: str) -> None:
    row = driver.find_element(By.CSS_SELECTOR, f'#channels tr[data-name="{channel}"]')
    [target] = [b for b in row.find_elements(By.TAG_NAME, "button") if b.text == label]
    target.click()


async def test_chart_test_disable_and_enable(
    start_server: StartServer, browser: Any, redis: aioredis.Redis
) -> None:
    app = await start_server(sections=YAML)
    await _channels(app, redis)
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_A)
    rows = await asyncio.to_thread(_rows, browser, ["ops-console", "a-console"])
    mine = rows["a-console"]
    assert mine["chart"] == {"delivered": "3", "failed": "2", "minutes": "1", "peak": "5"}
    delivered, failed = mine["paths"]
    assert delivered.startswith("M") and failed.startswith("M"), "one bar of each drawn"
    _name, team, kind, _chart, circuit, ratio, error, state, _actions = mine["cells"]
    assert (team, kind, circuit, ratio, error, state) == (
        "team-a",
        "console",
        "closed",
        "40 %",
        "HTTP 503",
        "enabled",
    )
    assert mine["buttons"] == ["Test", "Disable"]
    assert rows["ops-console"]["buttons"] == [], "the YAML's channel: an admin token switches it"
    assert rows["ops-console"]["chart"] == {
        "delivered": "0",
        "failed": "0",
        "minutes": "0",
        "peak": "0",
    }
    assert "b-console" not in await asyncio.to_thread(lambda: browser.page_source)

    def tested(driver: Any) -> str:
        _click(driver, "a-console", "Test")
        result: str = WebDriverWait(driver, WAIT).until(
            lambda d: _rows(d, ["ops-console", "a-console"])["a-console"]["result"]
        )
        return result

    result = await asyncio.to_thread(tested, browser)
    assert result.startswith("delivered in "), result

    await asyncio.to_thread(_click, browser, "a-console", "Disable")
    rows = await asyncio.to_thread(_rows, browser, ["ops-console", "a-console"], a_console="yes")
    assert rows["a-console"]["buttons"] == ["Test", "Enable"]
    assert "disabled by an operator" in rows["a-console"]["cells"][7]
    keys = Keys(app.settings.broker.prefix)
    assert (await DeliveryStore(redis, keys).channel_states())["a-console"].disabled

    await asyncio.to_thread(_click, browser, "a-console", "Enable")
    rows = await asyncio.to_thread(_rows, browser, ["ops-console", "a-console"], a_console="no")
    assert rows["a-console"]["buttons"] == ["Test", "Disable"]
    assert "a-console" not in await DeliveryStore(redis, keys).channel_states()


async def test_a_read_token_sees_channels_without_buttons(
    start_server: StartServer, browser: Any, redis: aioredis.Redis
) -> None:
    app = await start_server(sections=YAML)
    await _channels(app, redis)
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_READ_A)
    rows = await asyncio.to_thread(_rows, browser, ["ops-console", "a-console"])
    assert rows["a-console"]["chart"] is not None and rows["a-console"]["chart"]["failed"] == "2"
    assert [row["buttons"] for row in rows.values()] == [[], []]
    assert len(rows["a-console"]["cells"]) == 8, "no actions column"

    def page(driver: Any) -> tuple[bool, str]:
        return driver.find_element(
            By.ID, "channels-actions-head"
        ).is_displayed(), driver.page_source

    head, source = await asyncio.to_thread(page, browser)
    assert not head
    assert "b-console" not in source, "another team's channel never reaches the page"
