"""POST /v1/deliveries/{id}/resend on a real server: role operate, team scope, refusals."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from consumers.store import DeliveryRecord, DeliveryStatus, DeliveryStore
from consumers.work import new_record
from eventbus.keys import Keys

from .conftest import StartServer, event

pytestmark = pytest.mark.integration

TOKENS = [
    {"name": "a-reader", "token": "secret-token-a-read", "teams": ["team-a"]},
    {"name": "a-operator", "token": "secret-token-a-op", "teams": ["team-a"], "role": "operate"},
    {"name": "b-operator", "token": "secret-token-b-op", "teams": ["team-b"], "role": "operate"},
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def stored(
    redis: aioredis.Redis, prefix: str, status: DeliveryStatus, payload: bool = True
) -> DeliveryRecord:
    ev = event("team-a")
    record = new_record(ev, "all", "hook", "webhook", status, 1, time.time())
    record.payload = ev.to_json() if payload else None
    await redis.set(Keys(prefix).delivery(record.id), record.to_json())
    return record


async def test_an_operator_of_the_team_resends_a_failed_delivery(
    start_server: StartServer, redis: aioredis.Redis, prefix: str
) -> None:
    app = await start_server(tokens=TOKENS)
    record = await stored(redis, prefix, DeliveryStatus.FAILED)
    path = f"/v1/deliveries/{record.id}/resend"

    read = await app.client.post(path, headers=bearer("secret-token-a-read"))
    assert read.status_code == 403 and "role 'operate'" in read.json()["error"]
    foreign = await app.client.post(path, headers=bearer("secret-token-b-op"))
    unknown = await app.client.post(
        "/v1/deliveries/msg_unknown/resend", headers=bearer("secret-token-b-op")
    )
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json(), "another team's delivery is not revealed"
    assert await redis.zcard(Keys(prefix).retries) == 0

    done = await app.client.post(path, headers=bearer("secret-token-a-op"))
    assert done.status_code == 202, done.text
    assert done.json() == {"delivery_id": record.id, "scheduled": True, "note": "scheduled"}
    assert await redis.zscore(Keys(prefix).retries, record.id) is not None
    now = await DeliveryStore(redis, Keys(prefix)).get(record.id)
    assert now is not None and now.status is DeliveryStatus.RETRYING
    assert now.history[-1].response == "resend requested by token 'a-operator'"


async def test_refusals_are_409_with_the_reason(
    start_server: StartServer, redis: aioredis.Redis, prefix: str
) -> None:
    app = await start_server(tokens=TOKENS)
    delivered = await stored(redis, prefix, DeliveryStatus.DELIVERED, payload=False)
    path = f"/v1/deliveries/{delivered.id}/resend"
    headers = bearer("secret-token-a-op")

    plain = await app.client.post(path, headers=headers)
    assert plain.status_code == 409 and "delivered already" in plain.json()["error"]
    forced = await app.client.post(path, params={"force": "true"}, headers=headers)
    assert forced.status_code == 409, "no stream entry to send it from"
    assert "no longer available" in forced.json()["error"]
    assert await redis.zcard(Keys(prefix).retries) == 0
