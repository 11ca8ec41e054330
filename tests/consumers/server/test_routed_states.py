"""The HTTP API's status filter accepts the routed states and shows ``refers_to``."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tests.consumers.cli.test_deliveries_routed import ROUTED, write_routed

from .conftest import TOKEN_ADMIN, StartServer

pytestmark = pytest.mark.integration


async def test_http_api_filters_routed_states(
    start_server: StartServer, redis: aioredis.Redis, prefix: str
) -> None:
    ids = await write_routed(redis, prefix)
    app = await start_server()
    headers = {"Authorization": f"Bearer {TOKEN_ADMIN}"}
    for state in ROUTED:
        response = await app.client.get("/v1/deliveries", params={"status": state}, headers=headers)
        assert response.status_code == 200, response.text
        (row,) = response.json()["deliveries"]
        assert row["status"] == state and row["id"] == ids[state]
        assert row["refers_to"] == ids["delivered"]
