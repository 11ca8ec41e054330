"""The dashboard's Deliveries view in headless Chromium: filters, every attempt of
a record, Resend for operate tokens only, another team's records never shown."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import pytest
import redis.asyncio as aioredis

from consumers.store import DeliveryStore
from consumers.store.commit import Committer
from consumers.store.records import Attempt, DeliveryRecord, DeliveryStatus
from consumers.store.settlement import Settlement
from consumers.work import new_record
from eventbus.keys import Keys

from . import test_dashboard
from .conftest import TOKEN_A, TOKEN_READ_A, StartServer, event
from .test_dashboard import WAIT, _connect

pytestmark = [pytest.mark.integration, pytest.mark.browser]
browser = test_dashboard.browser  # the fixture: headless Chromium, or a skip saying why

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def _failed(team: str, subscription: str, channel: str) -> DeliveryRecord:
    """A delivery that failed twice, keeping its envelope (so it can be resent)."""
    ev = event(team)
    now = time.time()
    record = new_record(ev, subscription, channel, "webhook", DeliveryStatus.FAILED, 2, now)
    record.payload = ev.to_json()
    record.last_error = "HTTP 500 from the receiver"
    record.history = [
        Attempt(1, now - 60, 0.02, "retrying", status=500, error="HTTP 500 from the receiver"),
        Attempt(2, now - 30, 0.03, "failed", status=500, error="HTTP 500 from the receiver"),
    ]
    return record


async def _records(redis: aioredis.Redis, keys: Keys) -> dict[str, DeliveryRecord]:
    made = {
        "a-hook": _failed("team-a", "ops", "hook"),
        "a-chat": _failed("team-a", "chat-sub", "chat"),
        "b-hook": _failed("team-b", "ops", "hook"),
    }
    committer = Committer(redis, keys, group="delivery", ttl=3600)
    await committer.commit([Settlement(records=list(made.values()))], now=time.time())
    return made


def _rows(driver: Any, ids: set[str]) -> list[dict[str, Any]]:
    """The delivery rows once they are those of ``ids``: id, team, cells."""

    def read(d: Any) -> list[dict[str, Any]] | Literal[False]:
        rows = d.find_elements(By.CSS_SELECTOR, "#deliveries tbody tr")
        if {row.get_attribute("data-id") for row in rows} != ids or len(rows) != len(ids):
            return False
        return [
            {
                "id": row.get_attribute("data-id"),
                "team": row.get_attribute("data-team"),
                "cells": [td.text for td in row.find_elements(By.TAG_NAME, "td")],
            }
            for row in rows
        ]

    wait = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])
    found: list[dict[str, Any]] = wait.until(read)
    return found


def _open(driver: Any, record_id: str) -> list[str]:
    """Click a record's row: the outcomes of the attempts the detail panel shows."""
    driver.find_element(By.CSS_SELECTOR, f'#deliveries tr[data-id="{record_id}"]').click()
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_element(By.ID, "detail-id").text == record_id
    )
    rows = driver.find_elements(By.CSS_SELECTOR, "#attempts tbody tr")
    return [row.get_attribute("data-outcome") for row in rows]


async def test_deliveries_list_filter_and_resend(
    start_server: StartServer, browser: Any, redis: aioredis.Redis
) -> None:
    app = await start_server()
    keys = Keys(app.settings.broker.prefix)
    made = await _records(redis, keys)
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_A)
    rows = await asyncio.to_thread(_rows, browser, {made["a-hook"].id, made["a-chat"].id})
    assert {r["team"] for r in rows} == {"team-a"}, "team b's record is not shown"

    def filtered(driver: Any) -> list[dict[str, Any]]:
        driver.find_element(By.ID, "f-channel").send_keys("chat")
        Select(driver.find_element(By.ID, "f-status")).select_by_visible_text("failed")
        driver.find_element(By.CSS_SELECTOR, "#deliveries-filter button").click()
        return _rows(driver, {made["a-chat"].id})

    [row] = await asyncio.to_thread(filtered, browser)
    assert row["id"] == made["a-chat"].id

    def by_subscription(driver: Any) -> list[dict[str, Any]]:
        driver.find_element(By.ID, "f-channel").clear()
        driver.find_element(By.ID, "f-subscription").send_keys("ops")
        driver.find_element(By.CSS_SELECTOR, "#deliveries-filter button").click()
        return _rows(driver, {made["a-hook"].id})

    [row] = await asyncio.to_thread(by_subscription, browser)
    assert row["id"] == made["a-hook"].id
    record_id = made["a-hook"].id
    assert await asyncio.to_thread(_open, browser, record_id) == ["retrying", "failed"]

    def click_resend(driver: Any) -> tuple[str, list[str]]:
        driver.find_element(By.ID, "resend").click()
        WebDriverWait(driver, WAIT).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-resent") == record_id
        )
        WebDriverWait(driver, WAIT).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#attempts tbody tr")) == 3
        )
        rows = driver.find_elements(By.CSS_SELECTOR, "#attempts tbody tr")
        notice: str = driver.find_element(By.ID, "detail-notice").text
        return notice, [r.get_attribute("data-outcome") for r in rows]

    notice, outcomes = await asyncio.to_thread(click_resend, browser)
    assert notice == "Resend scheduled: scheduled"
    assert outcomes == ["retrying", "failed", "resend"]
    stored = await DeliveryStore(redis, keys).get(record_id)
    assert stored is not None and stored.status is DeliveryStatus.RETRYING
    assert await redis.zscore(keys.retries, record_id) is not None


async def test_a_read_token_sees_the_attempts_without_resend(
    start_server: StartServer, browser: Any, redis: aioredis.Redis
) -> None:
    app = await start_server()
    made = await _records(redis, Keys(app.settings.broker.prefix))
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_READ_A)
    rows = await asyncio.to_thread(_rows, browser, {made["a-hook"].id, made["a-chat"].id})
    assert {r["team"] for r in rows} == {"team-a"}
    outcomes = await asyncio.to_thread(_open, browser, made["a-chat"].id)
    assert outcomes == ["retrying", "failed"]

    def resend_shown(driver: Any) -> tuple[bool, str]:
        source: str = driver.page_source
        return driver.find_element(By.ID, "resend").is_displayed(), source

    shown, source = await asyncio.to_thread(resend_shown, browser)
    assert not shown
    assert made["b-hook"].id not in source, "another team's record never reaches the page"


async def test_the_deliveries_endpoint_filters_for_the_view(
    start_server: StartServer, redis: aioredis.Redis
) -> None:
    app = await start_server()
    made = await _records(redis, Keys(app.settings.broker.prefix))
    headers = {"Authorization": f"Bearer {TOKEN_A}"}

    async def ids(query: str) -> list[str]:
        response = await app.client.get("/v1/deliveries" + query, headers=headers)
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()["deliveries"]]

    assert await ids("?channel=chat") == [made["a-chat"].id]
    assert await ids("?subscription=ops") == [made["a-hook"].id], "team b's ops is not visible"
    assert await ids("?subscription=chat-sub&channel=hook") == []
    assert await ids(f"?event={made['b-hook'].event_id}") == [], "team b's, not visible"
    assert await ids(f"?event={made['a-hook'].event_id}") == [made["a-hook"].id]
    plain = (await app.client.get("/v1/deliveries", headers=headers)).json()["deliveries"]
    assert all("history" not in row for row in plain), "no history unless asked"
    full = await app.client.get("/v1/deliveries?history=true&channel=hook", headers=headers)
    [row] = full.json()["deliveries"]
    assert [attempt["outcome"] for attempt in row["history"]] == ["retrying", "failed"]
    assert "payload" not in row, "the kept envelope is never served"
