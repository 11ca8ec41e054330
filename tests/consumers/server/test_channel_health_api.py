"""/v1/channels/{name}/health, /disable and /enable on a real server and Redis:
both roles, another team's token, the YAML's channels, nothing secret served."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from consumers.breaker import Breaker
from consumers.channels.base import OutcomeClass, SendResult
from consumers.store import BreakerStore, DeliveryStore
from eventbus.keys import Keys
from eventbus.settings import ChannelSpec

from . import test_console_api
from .test_console_api import A_OPERATE, A_READ, B_OPERATE, SECRET, Console, hook

pytestmark = pytest.mark.integration
console = test_console_api.console  # the fixture: a server with the console's tokens

OK = SendResult(OutcomeClass.DELIVERED, status=200)
# A channel's error should be free of secrets already; the endpoint masks again.
DOWN = SendResult(OutcomeClass.RETRYABLE, status=500, error=f"HTTP 500 echoing {SECRET}")


async def _attempts(api: Console, *results: SendResult) -> None:
    spec = ChannelSpec.model_validate(hook())
    settings = api.settings.model_copy(update={"channels": [*api.settings.channels, spec]})
    breaker = Breaker(settings, BreakerStore(api.redis, Keys(settings.broker.prefix)))
    for result in results:
        breaker.observe("a-hook", result)
    await breaker.flush()


async def test_health_shows_the_minutes_and_the_circuit(console: Callable[..., Any]) -> None:
    api: Console = await console()
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=hook())).status_code == 201
    await _attempts(api, OK, DOWN, OK, DOWN, DOWN)
    for token in (A_OPERATE, A_READ):
        answer = await api.call("GET", "/v1/channels/a-hook/health?hours=2", token)
        assert answer.status_code == 200, answer.text
        health = answer.json()
        assert SECRET not in answer.text
        assert (health["source"], health["type"], health["hours"]) == ("api", "webhook", 2)
        [minute] = health["minutes"]
        assert (minute["delivered"], minute["failed"]) == (2, 3)
        assert time.time() - 120 < minute["at"] <= time.time(), "the minute of the flush"
        # the current minute is the last shown (the next one, if a minute began meanwhile)
        assert health["since"] - (minute["at"] - 2 * 3600) in (60, 120)
        circuit = health["circuit"]
        assert (circuit["attempts"], circuit["failures"]) == (5, 3)
        assert circuit["state"] == "closed" and circuit["failure_ratio"] == pytest.approx(0.6)
        assert circuit["last_error"].startswith("HTTP 500 echoing ")
        assert health["disabled"] is False
    config = await api.call("GET", "/v1/channels/ops-console/health", A_READ)
    assert config.status_code == 200 and config.json()["source"] == "config"
    assert config.json()["minutes"] == [] and config.json()["hours"] == 24
    for hours in ("0", "25", "x", "²"):
        bad = await api.call("GET", f"/v1/channels/a-hook/health?hours={hours}", A_READ)
        assert bad.status_code == 400 and "hours must be" in bad.json()["error"]


async def test_another_team_gets_404_as_for_a_missing_channel(
    console: Callable[..., Any],
) -> None:
    api: Console = await console()
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=hook())).status_code == 201
    for method, verb in [("GET", "health"), ("POST", "disable"), ("POST", "enable")]:
        foreign = await api.call(method, f"/v1/channels/a-hook/{verb}", B_OPERATE)
        missing = await api.call(method, f"/v1/channels/no-such/{verb}", B_OPERATE)
        assert (foreign.status_code, missing.status_code) == (404, 404), verb
        assert foreign.json()["error"] == "no channel named 'a-hook'"
        assert missing.json()["error"] == "no channel named 'no-such'"
    states = await DeliveryStore(api.redis, Keys(api.settings.broker.prefix)).channel_states()
    assert "a-hook" not in states, "team b switched nothing"


async def test_disable_then_enable_needs_operate(console: Callable[..., Any]) -> None:
    api: Console = await console()
    keys = Keys(api.settings.broker.prefix)
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=hook())).status_code == 201
    for verb in ("disable", "enable"):
        refused = await api.call("POST", f"/v1/channels/a-hook/{verb}", A_READ)
        assert refused.status_code == 403 and "role 'operate'" in refused.json()["error"]
    off = await api.call(
        "POST", "/v1/channels/a-hook/disable", A_OPERATE, json={"reason": "maintenance"}
    )
    assert off.status_code == 200, off.text
    assert off.json() == {"channel": "a-hook", "disabled": True, "reason": "maintenance"}
    state = (await DeliveryStore(api.redis, keys).channel_states())["a-hook"]
    assert state.disabled and state.reason == "maintenance"
    health = (await api.call("GET", "/v1/channels/a-hook/health", A_READ)).json()
    assert (health["disabled"], health["disabled_reason"]) == (True, "maintenance")

    await _attempts(api, DOWN)
    assert await api.redis.exists(keys.breaker("a-hook"))
    on = await api.call("POST", "/v1/channels/a-hook/enable", A_OPERATE)
    assert on.json() == {"channel": "a-hook", "disabled": False, "was_disabled": True}
    assert "a-hook" not in await DeliveryStore(api.redis, keys).channel_states()
    assert not await api.redis.exists(keys.breaker("a-hook")), "its circuit starts closed"
    again = await api.call("POST", "/v1/channels/a-hook/enable", A_OPERATE)
    assert again.json()["was_disabled"] is False

    blank = await api.call("POST", "/v1/channels/a-hook/disable", A_OPERATE, json={"reason": ""})
    assert blank.status_code == 422 and "reason" in blank.json()["error"]
    config = await api.call("POST", "/v1/channels/ops-console/disable", A_OPERATE)
    assert config.status_code == 403 and "only an admin token" in config.json()["error"]


async def test_disable_and_enable_are_in_the_audit_of_the_channels_team(
    console: Callable[..., Any],
) -> None:
    api: Console = await console()
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=hook())).status_code == 201
    await api.call("POST", "/v1/channels/a-hook/disable", A_OPERATE, json={"reason": "maint"})
    await api.call("POST", "/v1/channels/a-hook/enable", A_OPERATE)
    rows = (await api.call("GET", "/v1/audit", A_READ)).json()["audit"]
    switched = [(r["action"], r["name"], r["team"]) for r in rows if r["kind"] == "channel"]
    assert switched[:2] == [("enable", "a-hook", "team-a"), ("disable", "a-hook", "team-a")]
    actors = {r["actor"] for r in rows if r["action"] in ("enable", "disable")}
    assert actors == {"alice"}, actors
    foreign = (await api.call("GET", "/v1/audit", B_OPERATE)).json()["audit"]
    assert not [r for r in foreign if r["name"] == "a-hook"]


async def test_audit_narrows_to_one_team_and_a_limit(console: Callable[..., Any]) -> None:
    api: Console = await console()
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=hook())).status_code == 201
    await api.call("POST", "/v1/channels/a-hook/disable", A_OPERATE)
    mine = await api.call("GET", "/v1/audit?team=team-a&limit=1", A_READ)
    assert mine.status_code == 200, mine.text
    assert [(r["action"], r["team"]) for r in mine.json()["audit"]] == [("disable", "team-a")]
    assert len((await api.call("GET", "/v1/audit?team=team-a", A_READ)).json()["audit"]) == 2
    foreign = await api.call("GET", "/v1/audit?team=team-b", A_READ)
    assert foreign.status_code == 403 and "may not read team 'team-b'" in foreign.json()["error"]
    for bad in ("0", "1001", "ten"):
        refused = await api.call("GET", f"/v1/audit?limit={bad}", A_READ)
        assert refused.status_code == 400 and "limit must be" in refused.json()["error"]
