"""The dashboard's Alerts view in headless Chromium: listed firing first, buttons
for operate tokens only, ack published, another team's alerts never shown."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.store import AlertStatus
from eventbus.envelope import AlertAction
from eventbus.keys import Keys

from ..alert_fixtures import make_alert, save_alert, stream_events
from . import test_dashboard
from .conftest import TOKEN_A, TOKEN_ADMIN, TOKEN_READ_A, StartServer
from .test_dashboard import WAIT, _connect

pytestmark = [pytest.mark.integration, pytest.mark.browser]
browser = test_dashboard.browser  # the fixture: headless Chromium, or a skip saying why

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


async def _alerts(redis: aioredis.Redis, keys: Keys) -> None:
    await save_alert(redis, keys, make_alert("team-a", "disk:h2", AlertStatus.RESOLVED))
    await save_alert(
        redis, keys, make_alert("team-a", "backup-failed:h1", severity="warning", count=50)
    )
    await save_alert(redis, keys, make_alert("team-a", "cert:web", AlertStatus.ACKNOWLEDGED))
    await save_alert(redis, keys, make_alert("team-b", "host-down:h9", severity="critical"))


def _rows(driver: Any, count: int) -> list[dict[str, Any]]:
    """The alert rows once there are ``count``: key, team, status, cells, buttons."""

    def read(d: Any) -> list[dict[str, Any]] | bool:
        rows = d.find_elements(By.CSS_SELECTOR, "#alerts tbody tr")
        if len(rows) != count:
            return False
        return [
            {
                "key": row.get_attribute("data-key"),
                "team": row.get_attribute("data-team"),
                "status": row.get_attribute("data-status"),
                "cells": [td.text for td in row.find_elements(By.TAG_NAME, "td")],
                "buttons": [b.text for b in row.find_elements(By.TAG_NAME, "button")],
            }
            for row in rows
        ]

    # The table re-renders on refreshes and live alert events: a row read
    # mid-render is stale, and read again.
    found: list[dict[str, Any]] = WebDriverWait(
        driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)
    ).until(read)
    return found


async def test_the_alerts_view_lists_firing_first(
    start_server: StartServer,
    browser: Any,
    redis: aioredis.Redis,
) -> None:
    app = await start_server()
    await _alerts(redis, Keys(app.settings.broker.prefix))
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_ADMIN)
    rows = await asyncio.to_thread(_rows, browser, 4)
    assert [(r["status"], r["key"]) for r in rows] == [
        ("firing", "host-down:h9"),  # critical before warning
        ("firing", "backup-failed:h1"),
        ("acknowledged", "cert:web"),
        ("resolved", "disk:h2"),
    ]
    status, age, count, severity, team, key, summary, _actions = rows[1]["cells"]
    assert (status, age, count, severity, team, key) == (
        "firing",
        "3h2m",
        "50",
        "warning",
        "team-a",
        "backup-failed:h1",
    )
    assert summary == "backup failed on h1"
    # operate token: ack and resolve while firing, resolve only once acknowledged
    assert [r["buttons"] for r in rows] == [
        ["Acknowledge", "Resolve"],
        ["Acknowledge", "Resolve"],
        ["Resolve"],
        [],
    ]
    count_text = await asyncio.to_thread(lambda: browser.find_element(By.ID, "alerts-count").text)
    assert count_text == "(2 firing)"


async def test_acknowledge_from_the_page_publishes_the_action(
    start_server: StartServer,
    browser: Any,
    redis: aioredis.Redis,
) -> None:
    app = await start_server()
    keys = Keys(app.settings.broker.prefix)
    alert = make_alert("team-a", "backup-failed:h1")
    await save_alert(redis, keys, alert)
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_A)
    await asyncio.to_thread(_rows, browser, 1)

    def click_ack(driver: Any) -> str:
        driver.find_element(By.CSS_SELECTOR, "#alerts button.ack").click()
        WebDriverWait(driver, WAIT).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '#alerts tr[data-sent="ack"] .sent')
        )
        text: str = driver.find_element(By.CSS_SELECTOR, "#alerts .sent").text
        return text

    assert await asyncio.to_thread(click_ack, browser) == "sent, waiting for a worker"
    [event] = await stream_events(redis, keys)
    assert event.alert_action is AlertAction.ACKNOWLEDGE
    assert (event.team_id, event.alert and event.alert.key) == ("team-a", "backup-failed:h1")
    assert event.actor.id == "team-a" and event.metadata["via"] == "http"

    # A worker takes it in: on refresh the row is acknowledged, with Resolve only.
    alert.status, alert.acknowledged_by = AlertStatus.ACKNOWLEDGED, "team-a"
    await save_alert(redis, keys, alert)

    def refreshed(driver: Any) -> list[dict[str, Any]]:
        driver.find_element(By.ID, "alerts-refresh").click()
        WebDriverWait(driver, WAIT).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '#alerts tr[data-status="acknowledged"]')
        )
        return _rows(driver, 1)

    [row] = await asyncio.to_thread(refreshed, browser)
    assert row["buttons"] == ["Resolve"]


async def test_a_read_token_sees_alerts_without_buttons(
    start_server: StartServer,
    browser: Any,
    redis: aioredis.Redis,
) -> None:
    app = await start_server()
    await _alerts(redis, Keys(app.settings.broker.prefix))
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_READ_A)
    rows = await asyncio.to_thread(_rows, browser, 3)
    assert [r["buttons"] for r in rows] == [[], [], []]
    assert all(len(r["cells"]) == 7 for r in rows), "no actions column"

    def page(driver: Any) -> tuple[str | None, bool, int]:
        body = driver.find_element(By.TAG_NAME, "body").get_attribute("data-operate")
        head = driver.find_element(By.ID, "alerts-actions-head").is_displayed()
        return body, head, len(driver.find_elements(By.CSS_SELECTOR, "#alerts button"))

    assert await asyncio.to_thread(page, browser) == ("no", False, 0)


async def test_another_teams_alert_never_appears(
    start_server: StartServer,
    browser: Any,
    redis: aioredis.Redis,
) -> None:
    app = await start_server()
    keys = Keys(app.settings.broker.prefix)
    await _alerts(redis, keys)
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_A)
    rows = await asyncio.to_thread(_rows, browser, 3)
    assert {r["team"] for r in rows} == {"team-a"}
    # One more of team b and one of team a: after a refresh only team a's is added.
    await save_alert(redis, keys, make_alert("team-b", "backup-failed:h8"))
    await save_alert(redis, keys, make_alert("team-a", "backup-failed:h7"))

    def refreshed(driver: Any) -> list[dict[str, Any]]:
        driver.find_element(By.ID, "alerts-refresh").click()
        return _rows(driver, 4)

    rows = await asyncio.to_thread(refreshed, browser)
    assert {r["team"] for r in rows} == {"team-a"}
    assert "host-down:h9" not in await asyncio.to_thread(lambda: browser.page_source)
