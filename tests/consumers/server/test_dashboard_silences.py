"""The dashboard's Silences view in headless Chromium: add (with the 422 problems
shown), expire, no write controls for a read token, another team's never shown."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import pytest
import redis.asyncio as aioredis

from consumers.routing.silence_rules import new_silence
from consumers.store import SilenceStore
from eventbus.keys import Keys

from . import test_dashboard
from .conftest import TOKEN_A, TOKEN_READ_A, StartServer
from .test_dashboard import WAIT, _connect

pytestmark = [pytest.mark.integration, pytest.mark.browser]
browser = test_dashboard.browser  # the fixture: headless Chromium, or a skip saying why

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


async def _silence(store: SilenceStore, team: str, matcher: str) -> str:
    now = time.time()
    silence = new_silence(
        team=team, matchers=[matcher], duration=3600, comment="planned", created_by="test", now=now
    )
    await store.add(silence, now)
    return silence.id


def _rows(driver: Any, count: int) -> list[dict[str, Any]]:
    """The silence rows once there are ``count``: id, team, cells, buttons."""

    def read(d: Any) -> dict[str, list[dict[str, Any]]] | Literal[False]:
        rows = d.find_elements(By.CSS_SELECTOR, "#silences tbody tr")
        if len(rows) != count:
            return False
        return {
            "rows": [
                {
                    "id": row.get_attribute("data-id"),
                    "team": row.get_attribute("data-team"),
                    "cells": [td.text for td in row.find_elements(By.TAG_NAME, "td")],
                    "buttons": [b.text for b in row.find_elements(By.TAG_NAME, "button")],
                }
                for row in rows
            ]
        }  # a dict, since an empty list would mean "not yet" to until()

    wait = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])
    found: list[dict[str, Any]] = wait.until(read)["rows"]
    return found


def _fill(driver: Any, matchers: str, duration: str, comment: str) -> None:
    field = driver.find_element(By.ID, "s-matchers")
    field.clear()
    field.send_keys(matchers)
    field = driver.find_element(By.ID, "s-duration")
    field.clear()
    field.send_keys(duration)
    field = driver.find_element(By.ID, "s-comment")
    field.clear()
    field.send_keys(comment)
    driver.find_element(By.ID, "silence-add").click()


async def test_add_shows_problems_then_adds_and_expires(
    start_server: StartServer, browser: Any, redis: aioredis.Redis
) -> None:
    app = await start_server()
    store = SilenceStore(redis, Keys(app.settings.broker.prefix))
    foreign = await _silence(store, "team-b", "event=host.*")
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_A)
    await asyncio.to_thread(
        lambda: WebDriverWait(browser, WAIT).until(
            lambda d: d.find_element(By.ID, "silence-form").is_displayed()
        )
    )
    assert await asyncio.to_thread(_rows, browser, 0) == [], "team b's silence is not listed"

    def refused(driver: Any) -> list[str]:
        _fill(driver, "nonsense", "forever", "x")
        WebDriverWait(driver, WAIT).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#silence-problems li")
        )
        return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#silence-problems li")]

    problems = await asyncio.to_thread(refused, browser)
    assert any(p.startswith("duration:") for p in problems), problems
    assert len(problems) >= 2, "the bad matcher is listed too"
    assert [s.team for s in (await store.load(time.time()))[1]] == ["team-b"], "nothing was added"

    def added(driver: Any) -> list[dict[str, Any]]:
        _fill(driver, "event=host.*\nmetadata.region=eu-west", "2h", "maintenance")
        return _rows(driver, 1)

    [row] = await asyncio.to_thread(added, browser)
    team, matchers, _ends, comment, by, _actions = row["cells"]
    assert (team, matchers, comment, by) == (
        "team-a",
        "event=host.*, metadata.region=eu-west",
        "maintenance",
        "team-a",
    )
    assert row["buttons"] == ["Expire"]
    assert row["id"] != foreign
    notice_hidden = await asyncio.to_thread(
        lambda: not browser.find_element(By.ID, "silences-notice").is_displayed()
    )
    assert notice_hidden, "the earlier problems are cleared"
    held = (await store.load(time.time()))[1]
    assert sorted(s.team for s in held) == ["team-a", "team-b"]

    def expired(driver: Any) -> list[dict[str, Any]]:
        driver.find_element(By.CSS_SELECTOR, "#silences button.expire").click()
        return _rows(driver, 0)

    assert await asyncio.to_thread(expired, browser) == []
    assert [s.id for s in (await store.load(time.time()))[1]] == [foreign]
    assert foreign not in await asyncio.to_thread(lambda: browser.page_source)


async def test_a_read_token_sees_silences_without_controls(
    start_server: StartServer, browser: Any, redis: aioredis.Redis
) -> None:
    app = await start_server()
    store = SilenceStore(redis, Keys(app.settings.broker.prefix))
    mine = await _silence(store, "team-a", "event=backup.*")
    foreign = await _silence(store, "team-b", "event=host.*")
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_READ_A)
    [row] = await asyncio.to_thread(_rows, browser, 1)
    assert (row["id"], row["team"], row["buttons"]) == (mine, "team-a", [])
    assert len(row["cells"]) == 5, "no actions column"

    def controls(driver: Any) -> tuple[bool, bool, str]:
        form = driver.find_element(By.ID, "silence-form").is_displayed()
        head = driver.find_element(By.ID, "silences-actions-head").is_displayed()
        return form, head, driver.page_source

    form, head, source = await asyncio.to_thread(controls, browser)
    assert (form, head) == (False, False)
    assert foreign not in source, "another team's silence never reaches the page"
