"""/v1/channels, /v1/subscriptions and /v1/audit on a real server and Redis."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from consumers.health import Health
from consumers.metrics import Metrics
from consumers.server import HttpServer
from eventbus.keys import Keys
from eventbus.settings import Settings

from ..sink import Sink

pytestmark = pytest.mark.integration

KEY = base64.b64encode(b"k" * 32).decode()
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TOKENS = [
    {"name": "alice", "token": "tok-a-operate", "teams": ["team-a"], "role": "operate"},
    {"name": "reader", "token": "tok-a-read", "teams": ["team-a"]},
    {"name": "bob", "token": "tok-b-operate", "teams": ["team-b"], "role": "operate"},
]
A_OPERATE, A_READ, B_OPERATE = (t["token"] for t in TOKENS)
YAML = {
    "channels": [{"name": "ops-console", "type": "console"}],
    "subscriptions": [
        {"name": "ops-all", "team": "*", "events": ["*"], "channels": ["ops-console"]}
    ],
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Console:
    client: httpx.AsyncClient
    settings: Settings
    redis: aioredis.Redis

    async def call(self, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
        return await self.client.request(method, path, headers=bearer(token), **kw)

    async def raw(self, kind: str, name: str) -> bytes:
        value = await self.redis.hget(Keys(self.settings.broker.prefix).console(kind), name)
        assert value is not None
        return bytes(value)


@pytest.fixture
async def console(
    make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> AsyncIterator[Callable[..., Any]]:
    async with AsyncExitStack() as stack:

        async def start(**security: Any) -> Console:
            settings = make_settings(
                http={"port": 0, "tokens": TOKENS},
                security={"allow_private_targets": True, "secret_key": KEY, **security},
                **YAML,
            )
            health = Health()
            health.set_ready(None)
            server = HttpServer(settings, redis=redis, health=health, metrics=Metrics())
            await server.start()
            stack.push_async_callback(server.stop)
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.url, timeout=10.0)
            )
            return Console(client, settings, redis)

        yield start


def hook(url: str = "https://hooks.example.com/in", **kw: Any) -> dict[str, Any]:
    return {"name": "a-hook", "type": "webhook", "url": url, "secret": SECRET, **kw}


async def test_an_operate_token_adds_lists_changes_and_removes_its_channel(
    console: Callable[..., Any],
) -> None:
    api: Console = await console()
    made = await api.call("POST", "/v1/channels", A_OPERATE, json=hook())
    assert made.status_code == 201, made.text
    view = made.json()
    assert view["team"] == "team-a" and view["source"] == "api" and view["updated_by"] == "alice"
    assert view["secret"] == "***" and SECRET not in made.text
    assert made.headers["location"] == "/v1/channels/a-hook"

    listed = (await api.call("GET", "/v1/channels", A_READ)).json()["channels"]
    assert [(c["name"], c["source"]) for c in listed] == [
        ("ops-console", "config"),
        ("a-hook", "api"),
    ]
    one = await api.call("GET", "/v1/channels/a-hook", A_READ)
    assert one.json() == view

    changed = await api.call("PATCH", "/v1/channels/a-hook", A_OPERATE, json={"timeout": 3})
    assert changed.status_code == 200 and changed.json()["timeout"] == 3
    gone = await api.call("DELETE", "/v1/channels/a-hook", A_OPERATE)
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert (await api.call("GET", "/v1/channels/a-hook", A_READ)).status_code == 404


async def test_a_read_token_lists_but_changes_nothing(console: Callable[..., Any]) -> None:
    api: Console = await console()
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=hook())).status_code == 201
    sub = {"name": "a-sub", "events": ["*"], "channels": ["a-hook"]}
    assert (await api.call("POST", "/v1/subscriptions", A_OPERATE, json=sub)).status_code == 201
    assert (await api.call("GET", "/v1/channels", A_READ)).status_code == 200
    assert (await api.call("GET", "/v1/subscriptions/a-sub", A_READ)).status_code == 200
    for method, path, body in [
        ("POST", "/v1/channels", hook(name="other")),
        ("PATCH", "/v1/channels/a-hook", {"timeout": 2}),
        ("DELETE", "/v1/channels/a-hook", None),
        ("POST", "/v1/channels/a-hook/test", None),
        ("POST", "/v1/subscriptions", {**sub, "name": "other"}),
        ("PATCH", "/v1/subscriptions/a-sub", {"enabled": False}),
        ("DELETE", "/v1/subscriptions/a-sub", None),
    ]:
        answer = await api.call(method, path, A_READ, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert "operate" in answer.json()["error"]


async def test_a_foreign_teams_items_do_not_exist_for_a_token(
    console: Callable[..., Any],
) -> None:
    api: Console = await console()
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=hook())).status_code == 201
    sub = {"name": "a-sub", "events": ["*"], "channels": ["a-hook"]}
    assert (await api.call("POST", "/v1/subscriptions", A_OPERATE, json=sub)).status_code == 201
    listed = (await api.call("GET", "/v1/channels", B_OPERATE)).json()["channels"]
    assert [c["name"] for c in listed] == ["ops-console"], "only the YAML's"
    subs = (await api.call("GET", "/v1/subscriptions", B_OPERATE)).json()["subscriptions"]
    assert [s["name"] for s in subs] == ["ops-all"]
    missing = await api.call("GET", "/v1/channels/no-such", B_OPERATE)
    for method, path in [
        ("GET", "/v1/channels/a-hook"),
        ("PATCH", "/v1/channels/a-hook"),
        ("DELETE", "/v1/channels/a-hook"),
        ("POST", "/v1/channels/a-hook/test"),
        ("GET", "/v1/subscriptions/a-sub"),
        ("PATCH", "/v1/subscriptions/a-sub"),
        ("DELETE", "/v1/subscriptions/a-sub"),
    ]:
        answer = await api.call(method, path, B_OPERATE, json={"timeout": 1})
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"].replace("a-hook", "X").replace("a-sub", "X") in {
            missing.json()["error"].replace("no-such", "X"),
            "no subscription named 'X'",
        }
    # Naming team-a's channel from team-b is "does not exist".
    theirs = {"name": "b-sub", "events": ["*"], "channels": ["a-hook"]}
    refused = await api.call("POST", "/v1/subscriptions", B_OPERATE, json=theirs)
    assert refused.status_code == 422 and "does not exist" in refused.text
    other_team = await api.call(
        "POST", "/v1/channels", B_OPERATE, json={**hook(), "team": "team-a"}
    )
    assert other_team.status_code == 403
    audit = (await api.call("GET", "/v1/audit", B_OPERATE)).json()["audit"]
    assert audit == []


async def test_an_invalid_body_gets_422_with_every_problem(console: Callable[..., Any]) -> None:
    api: Console = await console(allow_private_targets=False)
    bad = {"name": "bad", "type": "webhook", "url": "http://10.0.0.5/in", "colour": "red"}
    answer = await api.call("POST", "/v1/channels", A_OPERATE, json=bad)
    assert answer.status_code == 422
    problems = " | ".join(answer.json()["problems"])
    assert "colour" in problems, problems
    private = await api.call("POST", "/v1/channels", A_OPERATE, json=hook("http://10.0.0.5/in"))
    assert private.status_code == 422 and "private" in private.text.lower(), private.text
    sub = {
        "name": "bad-sub",
        "events": ["Not A Pattern"],
        "channels": ["nowhere"],
        "where": {"metadata.region": {"regex": "("}},
        "title_template": "{{ oops",
    }
    answer = await api.call("POST", "/v1/subscriptions", A_OPERATE, json=sub)
    assert answer.status_code == 422
    problems = answer.json()["problems"]
    assert any("events" in p for p in problems) and any("where" in p for p in problems), problems
    fixed = {**sub, "events": ["host.*"], "where": None}
    answer = await api.call("POST", "/v1/subscriptions", A_OPERATE, json=fixed)
    problems = " | ".join(answer.json()["problems"])
    assert "'nowhere', which does not exist" in problems and "title_template" in problems


async def test_yaml_items_are_read_only_and_names_are_unique(console: Callable[..., Any]) -> None:
    api: Console = await console()
    taken = await api.call("POST", "/v1/channels", A_OPERATE, json=hook(name="ops-console"))
    assert taken.status_code == 409 and "YAML" in taken.json()["error"]
    for method in ("PATCH", "DELETE"):
        answer = await api.call(method, "/v1/subscriptions/ops-all", A_OPERATE, json={})
        assert answer.status_code == 409, answer.text
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=hook())).status_code == 201
    again = await api.call("POST", "/v1/channels", B_OPERATE, json=hook())
    assert again.status_code == 409 and "exists" in again.json()["error"]


async def test_echoing_the_mask_keeps_the_secret_and_a_new_value_replaces_it(
    console: Callable[..., Any],
) -> None:
    api: Console = await console()
    url = "https://user:hunter2-pass@hooks.example.com/in"
    shown = (await api.call("POST", "/v1/channels", A_OPERATE, json=hook(url))).json()
    assert shown["secret"] == "***" and "hunter2-pass" not in shown["url"]
    echoed = {k: v for k, v in shown.items() if k in {"url", "secret", "type"}}
    answer = await api.call("PATCH", "/v1/channels/a-hook", A_OPERATE, json=echoed)
    assert answer.status_code == 200, answer.text
    store_view = await _stored_body(api, "a-hook")
    assert store_view["secret"] == SECRET and store_view["url"] == url
    new = "whsec_" + base64.b64encode(b"n" * 24).decode()
    answer = await api.call("PATCH", "/v1/channels/a-hook", A_OPERATE, json={"secret": new})
    assert answer.status_code == 200 and answer.json()["secret"] == "***"
    assert (await _stored_body(api, "a-hook"))["secret"] == new


async def _stored_body(api: Console, name: str) -> dict[str, Any]:
    from consumers.console import ConsoleStore

    store = ConsoleStore(api.redis, Keys(api.settings.broker.prefix), api.settings.security)
    item = await store.get("channel", name)
    assert item is not None
    return item.body


async def test_secrets_are_encrypted_at_rest_and_never_in_the_audit(
    console: Callable[..., Any],
) -> None:
    api: Console = await console()
    url = "https://user:hunter2-pass@hooks.example.com/in"
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=hook(url))).status_code == 201
    raw = await api.raw("channel", "a-hook")
    assert SECRET.encode() not in raw and b"hunter2-pass" not in raw and b"MfKQ9r8" not in raw
    assert b'"sealed":"v1.' in raw
    stream = await api.redis.xrange(Keys(api.settings.broker.prefix).console_audit)
    text = repr(stream).encode()
    assert SECRET.encode() not in text and b"hunter2" not in text
    audit = (await api.call("GET", "/v1/audit", A_READ)).json()["audit"]
    assert [(r["actor"], r["action"], r["name"]) for r in audit] == [("alice", "create", "a-hook")]
    assert "secret" in audit[0]["fields"].split(",")


async def test_without_a_key_secrets_are_refused_and_plain_channels_accepted(
    console: Callable[..., Any],
) -> None:
    api: Console = await console(secret_key=None)
    refused = await api.call("POST", "/v1/channels", A_OPERATE, json=hook())
    assert refused.status_code == 422
    assert "EVENTBUS_SECURITY__SECRET_KEY" in refused.json()["error"]
    plain = {"name": "a-console", "type": "console"}
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=plain)).status_code == 201


async def test_concurrent_patches_never_mix(console: Callable[..., Any]) -> None:
    api: Console = await console()
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=hook())).status_code == 201
    patches = [{"timeout": n + 1, "headers": {"X-Writer": str(n + 1)}} for n in range(12)]
    answers = await asyncio.gather(
        *(api.call("PATCH", "/v1/channels/a-hook", A_OPERATE, json=p) for p in patches)
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    final = await _stored_body(api, "a-hook")
    assert final["headers"] == {"X-Writer": str(final["timeout"])}, "one writer's whole document"


async def test_the_test_endpoint(console: Callable[..., Any]) -> None:
    sink = Sink()
    await sink.start()
    try:
        api: Console = await console()
        made = await api.call("POST", "/v1/channels", A_OPERATE, json=hook(sink.url))
        assert made.status_code == 201
        answer = await api.call("POST", "/v1/channels/a-hook/test", A_OPERATE)
        assert answer.status_code == 200 and answer.json()["ok"] is True, answer.text
        assert len(sink.received) == 1 and b"channel_test" in sink.received[0].body
    finally:
        await sink.stop()


async def test_a_channel_in_use_stays_and_config_channels_are_tested_by_admins_only(
    console: Callable[..., Any],
) -> None:
    api: Console = await console()
    assert (await api.call("POST", "/v1/channels", A_OPERATE, json=hook())).status_code == 201
    sub = {"name": "a-sub", "events": ["*"], "channels": ["a-hook"]}
    assert (await api.call("POST", "/v1/subscriptions", A_OPERATE, json=sub)).status_code == 201
    used = await api.call("DELETE", "/v1/channels/a-hook", A_OPERATE)
    assert used.status_code == 409 and "a-sub" in used.json()["error"]
    assert (await api.call("DELETE", "/v1/subscriptions/a-sub", A_OPERATE)).status_code == 200
    assert (await api.call("DELETE", "/v1/channels/a-hook", A_OPERATE)).status_code == 200
    yaml_test = await api.call("POST", "/v1/channels/ops-console/test", A_OPERATE)
    assert yaml_test.status_code == 403 and "admin" in yaml_test.json()["error"]
