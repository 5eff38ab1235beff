"""Goals and missions through the API on the embedded Postgres: a user creates a goal, watches
it decompose, completes and skips missions, sees streak and DCI move, and is routed to each
adaptive path by what they feel and do."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.conftest import auth


def new_user() -> dict[str, str]:
    return auth(f"goals-{uuid.uuid4().hex[:8]}")


async def wait_for_run(client: httpx.AsyncClient, run_id: str, headers: dict[str, str]) -> dict:
    for _ in range(200):
        run = (await client.get(f"/api/v1/runs/{run_id}", headers=headers)).json()
        if run["status"] in ("success", "error", "timeout", "interrupted"):
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


async def create_goal(client: httpx.AsyncClient, headers: dict[str, str], **fields: object) -> dict:
    body = {
        "title": "Run a half marathon",
        "description": "I want to feel strong again and prove to myself I can finish hard things",
        "value_category": "health",
        **fields,
    }
    r = await client.post("/api/v1/goals", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_goal_decomposes_in_the_background(client: httpx.AsyncClient) -> None:
    user = new_user()
    created = await create_goal(client, user, target_date="2027-03-01")
    goal = created["goal"]
    assert goal["title"] == "Run a half marathon" and goal["status"] == "active"
    assert goal["emotional_driver"] == created["emotion"]["dominant"]
    assert created["similar_goals"] == []  # the first goal has no past to recall

    run = await wait_for_run(client, created["decomposition_run_id"], user)
    assert run["status"] == "success", run
    detail = (await client.get(f"/api/v1/goals/{goal['id']}", headers=user)).json()
    assert 3 <= len(detail["milestones"]) <= 7
    assert [m["sequence"] for m in detail["milestones"]] == list(range(1, len(detail["milestones"]) + 1))
    for ms in detail["milestones"]:
        assert 1 <= len(ms["missions"]) <= 5
        assert all(5 <= m["estimated_minutes"] <= 120 for m in ms["missions"])

    # The project memory was written, and a similar later goal recalls it.
    second = await create_goal(client, user, title="Run a full marathon", description="the next step")
    assert any("half marathon" in h["content"] for h in second["similar_goals"])
    await wait_for_run(client, second["decomposition_run_id"], user)

    # Decomposing again duplicates nothing.
    n_missions = len((await client.get("/api/v1/missions", headers=user)).json())
    again = await client.post(f"/api/v1/goals/{goal['id']}/decompose", headers=user)
    assert again.status_code == 200 and again.json()["created"] is False
    assert len((await client.get("/api/v1/missions", headers=user)).json()) == n_missions


async def test_decompose_stream_reports_each_milestone(client: httpx.AsyncClient, services) -> None:
    user = new_user()
    # A goal created without the background run, so the stream does the decomposition.
    me = await services.users.ensure(user["Authorization"].removeprefix("Bearer "))
    goal = await services.goals.create(
        me.id,
        goal_id=uuid.uuid4(),
        title="Learn to draw portraits",
        description="",
        value_category="craft",
        target_date=None,
        emotional_driver=None,
    )
    events: list[tuple[str, dict]] = []
    async with aconnect_sse(client, "POST", f"/api/v1/goals/{goal.id}/decompose/stream", headers=user) as s:
        async for e in s.aiter_sse():
            events.append((e.event, json.loads(e.data)))
    kinds = [k for k, _ in events]
    assert kinds[0] == "metadata" and kinds[-1] == "complete"
    milestones = [d for k, d in events if k == "milestone"]
    complete = events[-1][1]
    assert len(milestones) == complete["milestones"] and complete["created"] is True
    assert sorted(m["sequence"] for m in milestones) == list(range(1, len(milestones) + 1))
    assert {d["node"] for k, d in events if k == "step"} >= {"load_goal", "store_plan"}
    run = (await client.get(f"/api/v1/runs/{events[0][1]['run_id']}", headers=user)).json()
    assert run["status"] == "success"


async def test_goal_crud_and_owner_isolation(client: httpx.AsyncClient) -> None:
    user, other = new_user(), new_user()
    gid = (await create_goal(client, user))["goal"]["id"]
    patched = await client.patch(
        f"/api/v1/goals/{gid}", json={"title": "Run 21 km", "status": "paused"}, headers=user
    )
    assert patched.status_code == 200 and patched.json()["title"] == "Run 21 km"
    assert [g["id"] for g in (await client.get("/api/v1/goals?status=paused", headers=user)).json()] == [gid]
    for method, path in (
        ("GET", f"/api/v1/goals/{gid}"),
        ("PATCH", f"/api/v1/goals/{gid}"),
        ("DELETE", f"/api/v1/goals/{gid}"),
        ("POST", f"/api/v1/goals/{gid}/decompose"),
    ):
        r = await client.request(
            method, path, json={"title": "x"} if method == "PATCH" else None, headers=other
        )
        assert r.status_code == 404 and r.json()["detail"] == "goal not found"
    archived = await client.delete(f"/api/v1/goals/{gid}", headers=user)
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert (await client.get("/api/v1/goals", headers=other)).json() == []


async def test_missions_complete_skip_streak_and_dci(client: httpx.AsyncClient) -> None:
    user = new_user()
    created = await create_goal(client, user)
    await wait_for_run(client, created["decomposition_run_id"], user)
    before = (await client.get("/api/v1/progress", headers=user)).json()
    assert before["streak_days"] == 0 and before["dci"] == 0

    pending = (await client.get("/api/v1/missions?status=pending", headers=user)).json()
    first, second, third = pending[0]["id"], pending[1]["id"], pending[2]["id"]
    assert (await client.post(f"/api/v1/missions/{first}/start", headers=user)).json()[
        "status"
    ] == "in_progress"
    done = await client.post(f"/api/v1/missions/{first}/complete", json={"minutes": 40}, headers=user)
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert (await client.post(f"/api/v1/missions/{second}/complete", headers=user)).status_code == 200
    assert (await client.post(f"/api/v1/missions/{third}/skip", headers=user)).json()["status"] == "deferred"
    # A completed mission cannot be completed or skipped again.
    again = await client.post(f"/api/v1/missions/{first}/complete", headers=user)
    assert again.status_code == 409 and "completed" in again.json()["detail"]

    after = (await client.get("/api/v1/progress", headers=user)).json()
    assert after["streak_days"] == 1 and after["completed"] == 2 and after["skipped"] == 1
    assert after["terms"]["completion"] == pytest.approx(2 / 3, abs=1e-3)
    assert after["terms"]["streak"] == pytest.approx(1 / 30, abs=1e-3)
    assert after["dci"] > before["dci"] and after["zone"] in ("red", "yellow", "green")

    triad = (await client.get("/api/v1/missions/triad", headers=user)).json()
    levels = [m["energy_level"] for m in triad["missions"]]
    assert levels == [lv for lv in ("high", "medium", "low") if lv not in triad["missing_levels"]]
    assert all(m["status"] == "pending" for m in triad["missions"])


async def test_adaptive_paths_through_the_api(client: httpx.AsyncClient) -> None:
    user = new_user()
    created = await create_goal(client, user)
    await wait_for_run(client, created["decomposition_run_id"], user)

    sad = (
        await client.get(
            "/api/v1/missions/next",
            params={"feeling": "I feel so sad and hopeless, nothing works"},
            headers=user,
        )
    ).json()
    assert sad["path"] == "self_care" and "sadness" in sad["reason"]
    assert sad["missions"] and sad["missions"][0]["kind"] == "self_care"

    neutral = (
        await client.get(
            "/api/v1/missions/next", params={"feeling": "I went to the store and bought milk"}, headers=user
        )
    ).json()
    assert neutral["path"] == "triad" and neutral["missions"]

    joyful = "I'm so happy, today was amazing and I feel great!"
    await client.post("/api/v1/chat", json={"message": joyful}, headers=user)  # recent joy → high energy
    happy = (await client.get("/api/v1/missions/next", params={"feeling": joyful}, headers=user)).json()
    assert happy["path"] == "challenge", happy
    assert happy["missions"][0]["kind"] == "challenge" and happy["missions"][0]["energy_level"] == "high"

    pending = (await client.get("/api/v1/missions?status=pending", headers=user)).json()
    for m in [m for m in pending if m["kind"] == "regular"][:3]:
        assert (
            await client.post(f"/api/v1/missions/{m['id']}/complete", json={"minutes": 5}, headers=user)
        ).status_code == 200
    party = (
        await client.get("/api/v1/missions/next", params={"feeling": "I went to the store"}, headers=user)
    ).json()
    assert party["path"] == "celebration" and "3 missions completed" in party["reason"]


async def test_process_missions_reports_each_item(client: httpx.AsyncClient) -> None:
    user, other = new_user(), new_user()
    created = await create_goal(client, user)
    await wait_for_run(client, created["decomposition_run_id"], user)
    mine = [m["id"] for m in (await client.get("/api/v1/missions?status=pending", headers=user)).json()][:3]
    foreign = await create_goal(client, other)
    await wait_for_run(client, foreign["decomposition_run_id"], other)
    theirs = (await client.get("/api/v1/missions", headers=other)).json()[0]["id"]
    r = await client.post("/api/v1/missions/process", json={"mission_ids": [*mine, theirs]}, headers=user)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["processed"] == 3 and out["failed"] == 1
    assert [x["mission_id"] for x in out["results"]] == [*mine, theirs]
    assert out["results"][3]["ok"] is False and out["results"][3]["reason"] == "mission not found"
    assert all(x["first_step"] for x in out["results"][:3])
    other_view = (await client.get("/api/v1/missions", headers=other)).json()
    assert next(m for m in other_view if m["id"] == theirs)["first_step"] is None


BAD: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/v1/goals", {"title": "", "value_category": "health"}),
    ("POST", "/api/v1/goals", {"title": "x" * 201, "value_category": "health"}),
    ("POST", "/api/v1/goals", {"title": "ok", "description": "x" * 2001, "value_category": "health"}),
    ("POST", "/api/v1/goals", {"title": "ok", "value_category": "wealth"}),
    ("POST", "/api/v1/goals", {"title": "ok", "value_category": "health", "target_date": "tomorrow"}),
    ("POST", "/api/v1/goals", {"title": "ok", "value_category": "health", "owner": "me"}),
    ("POST", "/api/v1/goals", {"value_category": "health"}),
    ("GET", "/api/v1/goals?status=done", None),
    ("GET", "/api/v1/goals/not-a-uuid", None),
    ("PATCH", "/api/v1/goals/{gid}", {"target_date": 0}),  # a number, not a date
    ("PATCH", "/api/v1/goals/{gid}", {"status": "finished"}),
    ("PATCH", "/api/v1/goals/{gid}", {"title": None}),
    ("GET", "/api/v1/missions?status=done", None),
    ("GET", "/api/v1/missions/next?feeling=", None),
    ("POST", "/api/v1/missions/not-a-uuid/complete", None),
    ("POST", "/api/v1/missions/{mid}/complete", {"minutes": 0}),
    ("POST", "/api/v1/missions/{mid}/complete", {"minutes": 601}),
    ("POST", "/api/v1/missions/{mid}/complete", {"minutes": 5, "note": "x"}),
    ("POST", "/api/v1/missions/process", {"mission_ids": []}),
    ("POST", "/api/v1/missions/process", {"mission_ids": ["nope"]}),
    ("POST", "/api/v1/missions/process", {"mission_ids": [str(uuid.uuid4())] * 101}),
    ("GET", "/api/v1/runs/not-a-uuid", None),
]


@pytest.fixture(scope="module")
async def seeded(app) -> dict[str, str]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as c:
        user = new_user()
        created = await create_goal(c, user)
        await wait_for_run(c, created["decomposition_run_id"], user)
        mid = (await c.get("/api/v1/missions", headers=user)).json()[0]["id"]
        return {"user": user["Authorization"], "gid": created["goal"]["id"], "mid": mid}


async def table_counts(services) -> dict[str, int]:
    out = {}
    for t in ("goals", "milestones", "missions", "progress_events", "runs", "notifications", "memories"):
        out[t] = (await services.db.fetchrow(f"SELECT count(*) AS n FROM {t}"))["n"]
    return out


@pytest.mark.parametrize(("method", "path", "body"), BAD)
async def test_bad_input_is_422_and_writes_nothing(client, services, seeded, method, path, body) -> None:
    before = await table_counts(services)
    r = await client.request(
        method,
        path.format(gid=seeded["gid"], mid=seeded["mid"]),
        json=body,
        headers={"Authorization": seeded["user"]},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("invalid request")
    assert await table_counts(services) == before


async def test_unknown_ids_are_404_and_write_nothing(client, services, seeded) -> None:
    before = await table_counts(services)
    headers = {"Authorization": seeded["user"]}
    for method, path in (
        ("GET", f"/api/v1/goals/{uuid.uuid4()}"),
        ("POST", f"/api/v1/goals/{uuid.uuid4()}/decompose"),
        ("POST", f"/api/v1/missions/{uuid.uuid4()}/complete"),
        ("POST", f"/api/v1/missions/{uuid.uuid4()}/skip"),
        ("GET", f"/api/v1/runs/{uuid.uuid4()}"),
    ):
        r = await client.request(method, path, headers=headers)
        assert r.status_code == 404, (path, r.text)
    assert await table_counts(services) == before
