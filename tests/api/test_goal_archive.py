"""Archiving a goal (DELETE or PATCH status) archives its open missions in the same transaction,
and neither the priority triad nor `/missions/next` recommends a mission of an archived goal."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from state.goal_decomposition import MilestoneDraft, MissionDraft
from state.goals import Goal
from tests.conftest import auth


async def planned_goal(services, user_id: uuid.UUID, title: str, days: int = 60) -> Goal:
    """A goal with a stored plan: one mission per energy level in each of three milestones."""
    goal = await services.goals.create(
        user_id,
        goal_id=uuid.uuid4(),
        title=title,
        description="",
        value_category="craft",
        target_date=dt.date.today() + dt.timedelta(days=days),  # sooner: higher in the triad
        emotional_driver=None,
    )
    milestones = [MilestoneDraft(title=f"{title} step {i}") for i in range(3)]
    missions = [
        [
            MissionDraft(title=f"{title} {level} {i}", estimated_minutes=20, energy_level=level)
            for level in ("high", "medium", "low")
        ]
        for i in range(3)
    ]
    await services.goals.store_plan(goal, milestones, missions, dt.datetime.now(dt.UTC))
    return goal


async def recommended_goal_ids(client: httpx.AsyncClient, user: dict) -> tuple[set, set]:
    triad = (await client.get("/api/v1/missions/triad", headers=user)).json()["missions"]
    nxt = (await client.get("/api/v1/missions/next", headers=user)).json()
    assert nxt["path"] == "triad", nxt  # a fresh user with nothing said: the steady day
    return {m["goal_id"] for m in triad}, {m["goal_id"] for m in nxt["missions"]}


@pytest.mark.parametrize("how", ["delete", "patch"])
async def test_archived_goal_missions_are_archived_and_never_recommended(client, services, how) -> None:
    name = f"archive-{uuid.uuid4().hex[:8]}"
    user = auth(name)
    me = await services.users.ensure(f"dev:{name}")
    keep = await planned_goal(services, me.id, "Keep going")
    drop = await planned_goal(services, me.id, "Let go", days=5)
    started = (await client.get("/api/v1/missions?status=pending", headers=user)).json()
    first = next(m for m in started if m["goal_id"] == drop.id)
    assert (await client.post(f"/api/v1/missions/{first['id']}/start", headers=user)).status_code == 200

    assert drop.id in (await recommended_goal_ids(client, user))[0]

    if how == "delete":
        r = await client.delete(f"/api/v1/goals/{drop.id}", headers=user)
    else:
        r = await client.patch(f"/api/v1/goals/{drop.id}", json={"status": "archived"}, headers=user)
    assert r.status_code == 200 and r.json()["status"] == "archived"

    statuses = await services.db.fetch(
        "SELECT goal_id, status, count(*) AS n FROM missions WHERE user_id = %s GROUP BY 1, 2", (me.id,)
    )
    assert {(str(s["goal_id"]), s["status"]) for s in statuses} == {
        (keep.id, "pending"),
        (drop.id, "archived"),
    }
    triad, nxt = await recommended_goal_ids(client, user)
    assert triad == {keep.id} and nxt == {keep.id}


async def test_open_missions_of_an_archived_goal_are_never_recommended(client, services) -> None:
    """Rows left pending by older code, or planned while the goal was being archived."""
    name = f"archive-race-{uuid.uuid4().hex[:8]}"
    user = auth(name)
    me = await services.users.ensure(f"dev:{name}")
    old = await planned_goal(services, me.id, "Archived long ago", days=5)
    await services.db.execute("UPDATE goals SET status = 'archived' WHERE id = %s", (uuid.UUID(old.id),))
    assert await services.db.fetchrow(
        "SELECT 1 AS ok FROM missions WHERE goal_id = %s AND status = 'pending'", (uuid.UUID(old.id),)
    )
    triad, nxt = await recommended_goal_ids(client, user)
    assert triad == set() and nxt == set()

    # A decomposition that finishes after the goal was archived stores its missions archived.
    racing = await services.goals.create(
        me.id,
        goal_id=uuid.uuid4(),
        title="Archived mid-plan",
        description="",
        value_category="growth",
        target_date=None,
        emotional_driver=None,
    )
    await services.goals.update(me.id, uuid.UUID(racing.id), {"status": "archived"})
    await services.goals.store_plan(
        racing,
        [MilestoneDraft(title="m")],
        [[MissionDraft(title="t", estimated_minutes=10, energy_level="low")]],
        dt.datetime.now(dt.UTC),
    )
    rows = await services.db.fetch("SELECT status FROM missions WHERE goal_id = %s", (uuid.UUID(racing.id),))
    assert [r["status"] for r in rows] == ["archived"]
