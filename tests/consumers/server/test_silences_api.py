"""/v1/silences on a real server: scoped by the token's teams, validated, shared with workers."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from consumers.store import SilenceStore
from eventbus.keys import Keys

from .conftest import TOKEN_A, TOKEN_ADMIN, TOKEN_B, TOKEN_READ_A, StartServer

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "matchers": ["event=host.*", "metadata.region=eu-west"],
        "duration": "2h",
        "comment": "maintenance",
        **overrides,
    }


async def test_a_team_token_makes_lists_and_ends_its_silences(
    start_server: StartServer, redis: aioredis.Redis
) -> None:
    app = await start_server()
    made = await app.client.post("/v1/silences", json=body(), headers=bearer(TOKEN_A))
    assert made.status_code == 201, made.text
    silence = made.json()
    assert silence["team"] == "team-a", "a token of one team needs no team"
    assert silence["created_by"] == "team-a", "the token's name by default"
    assert made.headers["location"] == f"/v1/silences/{silence['id']}"
    stored = await SilenceStore(redis, Keys(app.settings.broker.prefix)).get(
        silence["id"], time.time()
    )
    assert stored is not None and stored.matchers == ("event=host.*", "metadata.region=eu-west")

    listed = await app.client.get("/v1/silences", headers=bearer(TOKEN_A))
    assert [s["id"] for s in listed.json()["silences"]] == [silence["id"]]
    one = await app.client.get(f"/v1/silences/{silence['id']}", headers=bearer(TOKEN_A))
    assert one.json() == silence

    ended = await app.client.delete(f"/v1/silences/{silence['id']}", headers=bearer(TOKEN_A))
    assert ended.status_code == 200 and ended.json()["expired"] is True
    assert (await app.client.get("/v1/silences", headers=bearer(TOKEN_A))).json() == {
        "silences": []
    }
    again = await app.client.delete(f"/v1/silences/{silence['id']}", headers=bearer(TOKEN_A))
    assert again.status_code == 404


async def test_another_teams_silence_is_not_found_and_not_listed(
    start_server: StartServer,
) -> None:
    app = await start_server()
    made = await app.client.post("/v1/silences", json=body(), headers=bearer(TOKEN_A))
    silence_id = made.json()["id"]
    missing_id = "01J00000000000000000000000"

    for method in ("GET", "DELETE"):
        foreign = await app.client.request(
            method, f"/v1/silences/{silence_id}", headers=bearer(TOKEN_B)
        )
        absent = await app.client.request(
            method, f"/v1/silences/{missing_id}", headers=bearer(TOKEN_B)
        )
        assert foreign.status_code == absent.status_code == 404
        assert foreign.json()["error"].replace(silence_id, "X") == absent.json()["error"].replace(
            missing_id, "X"
        ), "the same answer: nothing says it exists"
    listed = await app.client.get("/v1/silences", headers=bearer(TOKEN_B))
    assert listed.json() == {"silences": []}
    assert (
        await app.client.get("/v1/silences", params={"team": "team-a"}, headers=bearer(TOKEN_B))
    ).status_code == 403
    still = await app.client.get(f"/v1/silences/{silence_id}", headers=bearer(TOKEN_A))
    assert still.status_code == 200, "team-b's DELETE did not end it"

    admin = await app.client.get("/v1/silences", headers=bearer(TOKEN_ADMIN))
    assert [s["id"] for s in admin.json()["silences"]] == [silence_id]


async def test_making_one_for_another_team_is_forbidden(start_server: StartServer) -> None:
    app = await start_server()
    made = await app.client.post("/v1/silences", json=body(team="team-b"), headers=bearer(TOKEN_A))
    assert made.status_code == 403
    assert "team-b" in made.json()["error"]
    admin = await app.client.post(
        "/v1/silences", json=body(team="team-b"), headers=bearer(TOKEN_ADMIN)
    )
    assert admin.status_code == 201 and admin.json()["team"] == "team-b"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        pytest.param(
            {"matchers": ["evnt=x"]}, ["matcher 'evnt=x'", "did you mean 'event'"], id="path"
        ),
        pytest.param({"matchers": ["error=~(a"]}, ["regex '(a' is not valid"], id="regex"),
        pytest.param({"matchers": []}, ["at least one matcher"], id="no-matcher"),
        pytest.param({"matchers": "event=x"}, ["list of strings"], id="not-a-list"),
        pytest.param({"duration": "soon"}, ["duration: 'soon' is not a duration"], id="duration"),
        pytest.param({"ends_at": "2001-01-01T00:00:00Z"}, ["one of them"], id="both"),
        pytest.param({"comment": ""}, ["a comment is needed"], id="comment"),
        pytest.param({"colour": "red"}, ["unknown field 'colour'"], id="unknown-field"),
    ],
)
async def test_bad_bodies_are_422_listing_each_problem(
    start_server: StartServer, changes: dict[str, Any], says: list[str]
) -> None:
    app = await start_server()
    made = await app.client.post("/v1/silences", json=body(**changes), headers=bearer(TOKEN_A))
    assert made.status_code == 422, made.text
    problems = " | ".join(made.json()["problems"])
    for part in says:
        assert part in problems
    assert (await app.client.get("/v1/silences", headers=bearer(TOKEN_A))).json() == {
        "silences": []
    }


async def test_every_problem_at_once_and_ends_at(start_server: StartServer) -> None:
    app = await start_server()
    bad = {"team": "team-a", "matchers": ["nope"], "ends_at": "2001-01-01T00:00:00Z"}
    made = await app.client.post("/v1/silences", json=bad, headers=bearer(TOKEN_ADMIN))
    problems = made.json()["problems"]
    assert len(problems) == 3, problems  # matcher, ends_at in the past, comment
    assert any("ends_at '2001-01-01T00:00:00Z'" in p for p in problems)
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    good = {"matchers": ["event=host.*"], "ends_at": ends, "comment": "window"}
    made = await app.client.post("/v1/silences", json=good, headers=bearer(TOKEN_A))
    assert made.status_code == 201, made.text
    assert made.json()["ends_at"] == ends


async def test_needs_a_token_and_a_json_object(start_server: StartServer) -> None:
    app = await start_server()
    assert (await app.client.get("/v1/silences")).status_code == 401
    assert (await app.client.post("/v1/silences", json=body())).status_code == 401
    wrong = await app.client.post("/v1/silences", content=b"[1]", headers=bearer(TOKEN_A))
    assert wrong.status_code == 400 and "JSON object" in wrong.json()["error"]


async def test_a_read_token_lists_silences_but_cannot_make_or_end_one(
    start_server: StartServer, redis: aioredis.Redis
) -> None:
    # A read-only dashboard token must not be able to mute alerts.
    app = await start_server()
    made = await app.client.post("/v1/silences", json=body(), headers=bearer(TOKEN_READ_A))
    assert made.status_code == 403
    assert made.json()["error"] == (
        "token 'viewer-a' has role 'read': making a silence needs role 'operate'"
    )
    store = SilenceStore(redis, Keys(app.settings.broker.prefix))
    assert (await store.load(time.time()))[1] == [], "nothing was stored"

    silence_id = (
        await app.client.post("/v1/silences", json=body(), headers=bearer(TOKEN_A))
    ).json()["id"]
    listed = await app.client.get("/v1/silences", headers=bearer(TOKEN_READ_A))
    assert [s["id"] for s in listed.json()["silences"]] == [silence_id], "reading is allowed"
    ended = await app.client.delete(f"/v1/silences/{silence_id}", headers=bearer(TOKEN_READ_A))
    assert ended.status_code == 403 and "ending a silence needs role 'operate'" in ended.text
    assert await store.get(silence_id, time.time()) is not None, "still in force"
