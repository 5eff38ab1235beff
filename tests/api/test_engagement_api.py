"""Narrative beats, weekly insights and nudges through the API, for a user with a week of real
history (missions completed through the API, then spread over the last 7 days)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
import pytest

from tests.conftest import auth


async def seeded_user(
    client: httpx.AsyncClient, services, *, days: int, per_day: int
) -> tuple[dict, str, uuid.UUID]:
    """A user with a decomposed goal and `per_day` missions completed on each of the last `days` days."""
    subject = f"story-{uuid.uuid4().hex[:8]}"
    headers = auth(subject)
    created = (
        await client.post(
            "/api/v1/goals",
            json={
                "title": "Write my first novel",
                "description": "I love stories",
                "value_category": "craft",
            },
            headers=headers,
        )
    ).json()
    for _ in range(200):
        run = (await client.get(f"/api/v1/runs/{created['decomposition_run_id']}", headers=headers)).json()
        if run["status"] in ("success", "error", "timeout", "interrupted"):
            break
        await asyncio.sleep(0.05)
    user = await services.users.ensure(f"dev:{subject}")
    for i in range(days * per_day):  # enough missions whatever size the plan came out
        await services.missions.create_once(
            user.id,
            uuid.uuid4(),
            title=f"Write scene {i}",
            description="",
            estimated_minutes=30,
            energy_level="medium",
            kind="regular",
            goal_id=uuid.UUID(created["goal"]["id"]),
        )
    pending = (await client.get("/api/v1/missions?status=pending", headers=headers)).json()
    now = dt.datetime.now(dt.UTC)
    done = 0
    for day in range(days):
        for _ in range(per_day):
            mid = pending[done]["id"]
            assert (
                await client.post(f"/api/v1/missions/{mid}/complete", json={"minutes": 30}, headers=headers)
            ).status_code == 200
            await services.db.execute(
                "UPDATE progress_events SET at = %s WHERE mission_id = %s",
                (now - dt.timedelta(days=day), uuid.UUID(mid)),
            )
            done += 1
    return headers, created["goal"]["id"], user.id


async def test_week_of_history_gives_beat_insight_with_reel_and_no_nudge(client, services) -> None:
    headers, goal_id, _ = await seeded_user(client, services, days=7, per_day=2)

    beat = await client.post("/api/v1/narrative/beats", json={"goal_id": goal_id}, headers=headers)
    assert beat.status_code == 201, beat.text
    body = beat.json()
    assert body["created"] is True and 200 <= len(body["beat"]["text"].split()) <= 400
    assert body["usage"]["calls"] == 2  # story (premium) and teaser (cheap), in parallel
    # Each completed milestone is its own trigger: one beat each, then nothing new to tell.
    beats = [body]
    for _ in range(8):
        nxt = await client.post("/api/v1/narrative/beats", json={"goal_id": goal_id}, headers=headers)
        if not nxt.json()["created"]:
            break
        beats.append(nxt.json())
    assert nxt.status_code == 200 and nxt.json()["created"] is False
    assert nxt.json()["beat"]["id"] == beats[-1]["beat"]["id"]
    listed = (await client.get("/api/v1/narrative/beats", headers=headers)).json()
    assert sorted(b["id"] for b in listed) == sorted(b["beat"]["id"] for b in beats)
    assert len({b["trigger_key"] for b in listed}) == len(listed)  # never twice for one trigger
    quests = {q["key"] for q in (await client.get("/api/v1/narrative/quests", headers=headers)).json()}
    assert {"streak_7", "missions_10"} <= quests  # 7-day streak, 14 missions

    insight = await client.post("/api/v1/insights/weekly", json={}, headers=headers)
    assert insight.status_code == 201, insight.text
    reel = insight.json()["insight"]["highlight_reel"]
    assert reel is not None  # streak 7 earns the reel
    assert (await client.post("/api/v1/insights/weekly", headers=headers)).json()["created"] is False
    assert len((await client.get("/api/v1/insights", headers=headers)).json()) == 1

    plan = (await client.post("/api/v1/nudges/plan", headers=headers)).json()
    assert plan["scheduled"] is False and "active" in plan["reason"] and plan["days_inactive"] == 0


async def test_sparse_week_has_no_reel_and_a_drifted_user_gets_a_timed_nudge(client, services) -> None:
    headers, _, user_id = await seeded_user(client, services, days=1, per_day=1)
    insight = (await client.post("/api/v1/insights/weekly", json={}, headers=headers)).json()
    assert insight["insight"]["highlight_reel"] is None  # DCI < 0.8 and streak 1 < 7

    # Five days without activity (the seeded completion moved back in time).
    await services.db.execute(
        "UPDATE progress_events SET at = at - interval '5 days' WHERE user_id = %s", (user_id,)
    )
    await services.db.execute(
        "UPDATE users SET created_at = now() - interval '30 days' WHERE id = %s", (user_id,)
    )
    await services.db.execute(
        "UPDATE missions SET completed_at = completed_at - interval '5 days' WHERE user_id = %s", (user_id,)
    )
    await services.db.execute(
        "UPDATE chat_messages SET created_at = created_at - interval '5 days' WHERE thread_id IN "
        "(SELECT id FROM threads WHERE user_id = %s)",
        (user_id,),
    )
    plan = (await client.post("/api/v1/nudges/plan", headers=headers)).json()
    assert plan["scheduled"] is True and plan["days_inactive"] == 5, plan
    nudge = plan["nudge"]
    assert nudge["channel"] == "in_app"  # email was not opted into
    local = dt.datetime.fromisoformat(nudge["send_at"]).astimezone(dt.UTC).time()  # the user's zone is UTC
    assert not (local >= dt.time(22) or local < dt.time(8))  # never inside quiet hours
    # One per user per day.
    second = (await client.post("/api/v1/nudges/plan", headers=headers)).json()
    assert second["created"] is False and second["nudge"]["id"] == nudge["id"]
    assert [n["id"] for n in (await client.get("/api/v1/nudges", headers=headers)).json()] == [nudge["id"]]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/narrative/beats", {}),
        ("POST", "/api/v1/narrative/beats", {"goal_id": "nope"}),
        ("POST", "/api/v1/narrative/beats", {"goal_id": str(uuid.uuid4()), "style": "epic"}),
        ("GET", "/api/v1/narrative/beats?limit=0", None),
        ("GET", "/api/v1/narrative/beats?goal_id=x", None),
        ("POST", "/api/v1/insights/weekly", {"week": "2026-48"}),
        ("POST", "/api/v1/insights/weekly", {"week": "2026-W54"}),
        ("GET", "/api/v1/insights?limit=1000", None),
        ("GET", "/api/v1/nudges?limit=-1", None),
    ],
)
async def test_bad_input(client, services, method, path, body) -> None:
    before = {
        t: (await services.db.fetchrow(f"SELECT count(*) AS n FROM {t}"))["n"]
        for t in ("narrative_beats", "insights", "nudges", "memories")
    }
    r = await client.request(method, path, json=body, headers=auth("engagement-bad"))
    assert r.status_code == 422 and r.json()["detail"].startswith("invalid request")
    after = {t: (await services.db.fetchrow(f"SELECT count(*) AS n FROM {t}"))["n"] for t in before}
    assert after == before


async def test_someone_elses_goal_is_404(client) -> None:
    owner = auth(f"owner-{uuid.uuid4().hex[:6]}")
    gid = (
        await client.post("/api/v1/goals", json={"title": "Mine", "value_category": "growth"}, headers=owner)
    ).json()["goal"]["id"]
    r = await client.post("/api/v1/narrative/beats", json={"goal_id": gid}, headers=auth("intruder"))
    assert r.status_code == 404 and r.json()["detail"] == "goal not found"
