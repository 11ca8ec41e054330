"""The dashboard in headless Chromium (Debian's ``chromium`` + ``chromium-driver``).

Setup, once per machine (CI does the same)::

    apt-get update && apt-get install -y chromium chromium-driver
    pip install selenium

Selenium runs in a worker thread (``asyncio.to_thread``) so that the server,
which lives in the test's event loop, keeps serving while the browser waits.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.store.commit import Committer
from consumers.store.records import DeliveryRecord, DeliveryStatus
from consumers.store.settlement import Settlement
from eventbus.keys import Keys

from .conftest import REQUIRE_BROWSER, TOKEN_A, TOKEN_ADMIN, StartServer, event
from .test_probes import write_record

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = os.environ.get("EVENTBUS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("EVENTBUS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 20  # seconds any single browser-side condition may take

webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _launch(profile: Path) -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        message = f"{', '.join(missing)} not found: apt-get install -y chromium chromium-driver"
        if REQUIRE_BROWSER:
            pytest.fail(message)
        pytest.skip(message)
    driver = await asyncio.to_thread(_launch, tmp_path / "profile")
    try:
        yield driver
    finally:
        await asyncio.to_thread(driver.quit)


def _connect(driver: Any, url: str, token: str) -> None:
    driver.get(url + "/")
    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)
    driver.find_element(By.ID, "connect").click()
    _wait_state(driver, "connected")


def _wait_state(driver: Any, state: str) -> None:
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == state
    )


def _wait_rows(driver: Any, event_ids: list[str]) -> list[Any]:
    def rows(d: Any) -> list[Any] | bool:
        found = [
            d.find_elements(By.CSS_SELECTOR, f'#feed tr[data-event-id="{i}"]') for i in event_ids
        ]
        return [r[0] for r in found] if all(found) else False

    result: list[Any] = WebDriverWait(driver, WAIT).until(rows)
    return result


def _feed_ids(driver: Any) -> list[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#feed tbody tr")
    return [row.get_attribute("data-event-id") for row in rows]


async def test_dashboard_live_feed_and_deliveries(
    start_server: StartServer,
    browser: Any,
    redis: aioredis.Redis,
    prefix: str,
    tmp_path: Path,
) -> None:
    app = await start_server()
    await write_record(redis, Keys(prefix), "team-a", 1)
    await write_record(redis, Keys(prefix), "team-b", 2, DeliveryStatus.FAILED)

    await asyncio.to_thread(_connect, browser, app.url, TOKEN_ADMIN)

    # Deliveries: both teams for the admin token, coloured by status.
    badges = await asyncio.to_thread(
        WebDriverWait(browser, WAIT).until,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#deliveries tbody .badge") or False,
    )
    assert sorted(b.text for b in badges) == ["delivered", "failed"]

    sent = [
        event("team-a", "capsule.create", "success", "c1"),
        event("team-b", "host.down", "error", "h1", error="no heartbeat"),
        event("team-a", "capsule.state.changed", None, "c1"),
    ]
    await app.publisher.publish(sent[0])
    await app.publisher.publish(sent[1])
    await app.publisher.publish_transient(sent[2])
    rows = await asyncio.to_thread(_wait_rows, browser, [e.id for e in sent])
    texts = [row.text for row in rows]
    assert "team-a" in texts[0] and "capsule.create" in texts[0] and "capsule:c1" in texts[0]
    assert "host.down" in texts[1] and "error" in texts[1]
    classes = [row.get_attribute("class") for row in rows]
    assert classes == ["outcome-success", "outcome-error", "outcome-none"]
    # No severity given: the effective one (error for a failure, else info), marked implied.
    assert [row.get_attribute("data-severity") for row in rows] == ["info", "error", "info"]
    assert "sev-implied" in rows[1].find_element(By.CSS_SELECTOR, ".sev").get_attribute("class")
    # newest first
    assert (await asyncio.to_thread(_feed_ids, browser))[:3] == [e.id for e in reversed(sent)]

    # The stream is cut (as when Redis blips): the page says so, reconnects with
    # Last-Event-ID and shows what was published meanwhile exactly once.
    app.server.hub.close_streams("test: connection cut")
    await asyncio.to_thread(_wait_state, browser, "reconnecting")
    missed = event("team-a", "capsule.pause", "success", "c1")
    await app.publisher.publish(missed)
    await asyncio.to_thread(_wait_state, browser, "connected")
    await asyncio.to_thread(_wait_rows, browser, [missed.id])
    ids = await asyncio.to_thread(_feed_ids, browser)
    assert ids.count(missed.id) == 1
    assert ids.count(sent[0].id) == 1

    shot = tmp_path / "dashboard.png"
    await asyncio.to_thread(browser.save_screenshot, str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("EVENTBUS_TEST_SCREENSHOT"):
        shutil.copy(shot, os.environ["EVENTBUS_TEST_SCREENSHOT"])


async def test_dashboard_team_token_and_bad_token(start_server: StartServer, browser: Any) -> None:
    app = await start_server()
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_A)
    other, mine = event("team-b", resource="theirs"), event("team-a", resource="mine")
    await app.publisher.publish(other)
    await app.publisher.publish(mine)
    await asyncio.to_thread(_wait_rows, browser, [mine.id])
    assert other.id not in await asyncio.to_thread(_feed_ids, browser)

    def refused(driver: Any) -> str:
        driver.get(app.url + "/")
        field = driver.find_element(By.ID, "token")
        field.clear()
        field.send_keys("not-a-token")
        driver.find_element(By.ID, "connect").click()
        _wait_state(driver, "error")
        text: str = driver.find_element(By.ID, "state").text
        return text

    assert "invalid token" in await asyncio.to_thread(refused, browser)


async def test_dashboard_says_when_the_server_has_no_token(
    start_server: StartServer, browser: Any
) -> None:
    # The first run used to show "Waiting for events..." forever.
    app = await start_server(tokens=[])

    def page_state(driver: Any) -> tuple[str, str, bool]:
        driver.get(app.url + "/")
        _wait_state(driver, "error")
        state: str = driver.find_element(By.ID, "state").text
        empty: str = driver.find_element(By.ID, "feed-empty").text
        return state, empty, driver.find_element(By.ID, "connect").is_enabled()

    state, empty, can_connect = await asyncio.to_thread(page_state, browser)
    assert state == "no token configured on this server"
    assert "eventbus tokens new" in empty and "Waiting for events" not in empty
    assert not can_connect


async def _write_routed(redis: aioredis.Redis, keys: Keys) -> None:
    explained = {
        DeliveryStatus.SUPPRESSED: ("cooldown until 12:00:00 (key team-a/host.down/h1)", None),
        DeliveryStatus.GROUPED: ("folded into a digest", "msg_digest1"),
        DeliveryStatus.SILENCED: ("silence matched", "sil_01"),
        DeliveryStatus.MERGED: ("another subscription delivers it", "msg_first"),
    }
    records = [
        DeliveryRecord(
            id=f"msg_{status.value}",
            event_id=f"ev_{status.value}",
            event_type="host.down",
            team_id="team-a",
            subscription="pager",
            channel="hook",
            channel_type="webhook",
            status=status,
            reason=reason,
            refers_to=refers_to,
        )
        for status, (reason, refers_to) in explained.items()
    ]
    committer = Committer(redis, keys, group="delivery", ttl=3600)
    await committer.commit([Settlement(records=records)], now=records[0].updated_at)


def _delivery_badges(driver: Any) -> dict[str, tuple[str, str]] | bool:
    """Status -> (badge colour, last result text), once all five rows are shown."""
    shown = {}
    try:
        for row in driver.find_elements(By.CSS_SELECTOR, "#deliveries tbody tr"):
            badge = row.find_element(By.CSS_SELECTOR, ".badge")
            result = row.find_elements(By.TAG_NAME, "td")[-1].text
            shown[badge.text] = (badge.value_of_css_property("background-color"), result)
    except StaleElementReferenceException:  # the table was refreshed meanwhile
        return False
    return shown if len(shown) == 5 else False


async def test_dashboard_shows_severity_and_routing_states(
    start_server: StartServer, browser: Any, redis: aioredis.Redis, prefix: str
) -> None:
    app = await start_server()
    await write_record(redis, Keys(prefix), "team-a", 1)
    await _write_routed(redis, Keys(prefix))
    await asyncio.to_thread(_connect, browser, app.url, TOKEN_ADMIN)

    shown = await asyncio.to_thread(WebDriverWait(browser, WAIT).until, _delivery_badges)
    assert sorted(shown) == ["delivered", "grouped", "merged", "silenced", "suppressed"]
    # each state has its own colour, and says why nothing was sent
    assert len({colour for colour, _ in shown.values()}) == 5
    assert shown["grouped"][1] == "folded into a digest → msg_digest1"
    assert shown["silenced"][1] == "silence matched → sil_01"
    assert shown["suppressed"][1].startswith("cooldown until 12:00:00")

    sent = [
        event("team-a", "host.down", None, "h1", severity="critical"),
        event("team-a", "host.down", None, "h2", severity="warning"),
        event("team-a", "capsule.create", "error", "c1", severity="debug"),
    ]
    for item in sent:
        await app.publisher.publish(item)
    rows = await asyncio.to_thread(_wait_rows, browser, [e.id for e in sent])

    def badges() -> list[tuple[str, str, str]]:
        found = [row.find_element(By.CSS_SELECTOR, ".sev") for row in rows]
        return [
            (b.text, b.get_attribute("class"), b.value_of_css_property("background-color"))
            for b in found
        ]

    got = await asyncio.to_thread(badges)
    assert [(text, cls) for text, cls, _ in got] == [
        ("critical", "badge sev sev-critical"),
        ("warning", "badge sev sev-warning"),
        ("debug", "badge sev sev-debug"),  # a given severity wins over the outcome
    ]
    assert len({colour for *_, colour in got}) == 3
