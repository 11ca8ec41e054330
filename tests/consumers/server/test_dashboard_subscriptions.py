"""The dashboard's Subscriptions view in headless Chromium: add with a 422 showing
every problem, then a valid add, edit and remove; the YAML's are read-only; a
read token sees no write controls; another team's never reach the page."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import pytest

from . import test_dashboard
from .conftest import TOKEN_A, TOKEN_B, TOKEN_READ_A, Running, StartServer
from .test_dashboard import WAIT, _connect

pytestmark = [pytest.mark.integration, pytest.mark.browser]
browser = test_dashboard.browser  # the fixture: headless Chromium, or a skip saying why

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

YAML = {
    "channels": [{"name": "ops-console", "type": "console"}],
    "subscriptions": [
        {"name": "ops-all", "team": "*", "events": ["*"], "channels": ["ops-console"]}
    ],
}


async def _seed(app: Running) -> None:
    """Channel a-console for team a; channel and subscription b-sub for team b."""
    for token, kind, body in [
        (TOKEN_A, "channels", {"name": "a-console", "type": "console"}),
        (TOKEN_B, "channels", {"name": "b-console", "type": "console"}),
        (TOKEN_B, "subscriptions", {"name": "b-sub", "events": ["*"], "channels": ["b-console"]}),
    ]:
        made = await app.client.post(
            f"/v1/{kind}", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert made.status_code == 201, made.text


def _rows(driver: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """The subscription rows once they are ``names`` (in order): cells and buttons."""

    def read(d: Any) -> dict[str, dict[str, Any]] | Literal[False]:
        rows = d.find_elements(By.CSS_SELECTOR, "#subscriptions tbody tr")
        if [row.get_attribute("data-name") for row in rows] != names:
            return False
        return {
            row.get_attribute("data-name"): {
                "cells": [td.text for td in row.find_elements(By.TAG_NAME, "td")],
                "buttons": [b.text for b in row.find_elements(By.TAG_NAME, "button")],
            }
            for row in rows
        }

    wait = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])
    found: dict[str, dict[str, Any]] = wait.until(read)
    return found


def _fill(driver: Any, **fields: str) -> None:
    for name, value in fields.items():
        field = driver.find_element(By.ID, "sub-" + name)
        field.clear()
        if value:
            field.send_keys(value)
    driver.find_element(By.ID, "sub-save").click()


def _problems(driver: Any) -> list[str]:
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#subs-problems li")
    )
    return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#subs-problems li")]


def _click(driver: Any, name: str, label: str) -> None:
    row = driver.find_element(By.CSS_SELECTOR, f'#subscriptions tr[data-name="{name}"]')
    [target] = [b for b in row.find_elements(By.TAG_NAME, "button") if b.text == label]
    target.click()


async def test_add_with_problems_then_add_edit_and_remove(
    start_server: StartServer, browser: Any
) -> None:
    app = await start_server(sections=YAML)
    await _seed(app)
    headers = {"Authorization": f"Bearer {TOKEN_A}"}
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_A)
    rows = await asyncio.to_thread(_rows, browser, ["ops-all"])
    assert rows["ops-all"]["buttons"] == [], "the YAML's subscription is read-only"
    assert "config (read-only)" in rows["ops-all"]["cells"]

    def refused(driver: Any) -> list[str]:
        _fill(driver, name="a-sub", events="", channels="a-console", more='{"bogus": 1}')
        return _problems(driver)

    problems = await asyncio.to_thread(refused, browser)
    assert "'events' is required" in problems, problems
    assert any("unknown field 'bogus'" in p for p in problems), problems
    listed = await app.client.get("/v1/subscriptions/a-sub", headers=headers)
    assert listed.status_code == 404, "nothing was added"

    def added(driver: Any) -> dict[str, dict[str, Any]]:
        _fill(driver, name="a-sub", events="host.*", channels="a-console", more="")
        return _rows(driver, ["ops-all", "a-sub"])

    rows = await asyncio.to_thread(added, browser)
    name, team, events, channels, _other, source, _actions = rows["a-sub"]["cells"]
    assert (name, team, events, channels, source) == (
        "a-sub",
        "team-a",
        "host.*",
        "a-console",
        "api",
    )
    assert rows["a-sub"]["buttons"] == ["Edit", "Remove"]
    notice_shown = await asyncio.to_thread(
        lambda: browser.find_element(By.ID, "subs-notice").is_displayed()
    )
    assert not notice_shown, "the earlier problems are cleared"

    def edited(driver: Any) -> dict[str, dict[str, Any]]:
        _click(driver, "a-sub", "Edit")
        _fill(driver, events="host.down, capsule.*", more='{"outcomes": ["error"]}')

        def changed(d: Any) -> dict[str, dict[str, Any]] | Literal[False]:
            now = _rows(d, ["ops-all", "a-sub"])
            return now if now["a-sub"]["cells"][2] == "host.down, capsule.*" else False

        result: dict[str, dict[str, Any]] = WebDriverWait(driver, WAIT).until(changed)
        return result

    rows = await asyncio.to_thread(edited, browser)
    assert rows["a-sub"]["cells"][4] == '{"outcomes":["error"]}'
    stored = (await app.client.get("/v1/subscriptions/a-sub", headers=headers)).json()
    assert (stored["events"], stored["outcomes"]) == (["host.down", "capsule.*"], ["error"])

    def removed(driver: Any) -> dict[str, dict[str, Any]]:
        _click(driver, "a-sub", "Remove")
        _click(driver, "a-sub", "Really remove?")
        return _rows(driver, ["ops-all"])

    assert list(await asyncio.to_thread(removed, browser)) == ["ops-all"]
    gone = await app.client.get("/v1/subscriptions/a-sub", headers=headers)
    assert gone.status_code == 404
    assert "b-sub" not in await asyncio.to_thread(lambda: browser.page_source)


async def test_a_read_token_sees_subscriptions_without_controls(
    start_server: StartServer, browser: Any
) -> None:
    app = await start_server(sections=YAML)
    await _seed(app)
    made = await app.client.post(
        "/v1/subscriptions",
        json={"name": "a-sub", "events": ["*"], "channels": ["a-console"]},
        headers={"Authorization": f"Bearer {TOKEN_A}"},
    )
    assert made.status_code == 201, made.text
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_READ_A)
    rows = await asyncio.to_thread(_rows, browser, ["ops-all", "a-sub"])
    assert [row["buttons"] for row in rows.values()] == [[], []]
    assert len(rows["a-sub"]["cells"]) == 6, "no actions column"

    def controls(driver: Any) -> tuple[bool, bool, str]:
        form = driver.find_element(By.ID, "sub-form").is_displayed()
        head = driver.find_element(By.ID, "subscriptions-actions-head").is_displayed()
        return form, head, driver.page_source

    form, head, source = await asyncio.to_thread(controls, browser)
    assert (form, head) == (False, False)
    assert "b-sub" not in source and "b-console" not in source
