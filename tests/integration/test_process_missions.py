"""process_missions on the embedded Postgres with the real services, the offline model and the
Postgres checkpointer: rows are updated for the user's open missions only, refusals and other
users' missions are left untouched, usage is recorded, and the run is checkpointed."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from langchain_core.runnables import RunnableConfig

from domain.missions import priority_score
from graphs.process_missions import GRAPH, build, run_config
from nodes.context import Context

pytestmark = pytest.mark.db


async def _row(services, mission_id: str) -> dict:
    row = await services.db.fetchrow(
        "SELECT first_step, priority_score, status, created_at FROM missions WHERE id = %s",
        (uuid.UUID(mission_id),),
    )
    assert row is not None
    return row


async def test_process_missions_updates_only_the_users_open_missions(services) -> None:
    user = await services.users.ensure(f"process-{uuid.uuid4().hex[:8]}")
    other = await services.users.ensure(f"process-other-{uuid.uuid4().hex[:8]}")
    target = dt.date.today() + dt.timedelta(days=20)
    goal = await services.goals.create(
        user.id,
        goal_id=uuid.uuid4(),
        title="Run a half marathon",
        description="By the autumn",
        value_category="health",
        target_date=target,
        emotional_driver=None,
    )

    async def mission(owner: uuid.UUID, title: str, minutes: int, **extra):
        return await services.missions.create_once(
            owner,
            uuid.uuid4(),
            title=title,
            description=f"{title}, described",
            estimated_minutes=minutes,
            energy_level="medium",
            kind="regular",
            **extra,
        )

    run = await mission(user.id, "Run 3 km slowly", 30, goal_id=uuid.UUID(goal.id), value_category="health")
    stretch = await mission(user.id, "Stretch after work", 10)
    done = await mission(user.id, "Buy running shoes", 45)
    theirs = await mission(other.id, "Their private mission", 20)
    await services.missions.transition(user.id, uuid.UUID(done.id), "complete", now=dt.datetime.now(dt.UTC))
    unknown = str(uuid.uuid4())
    before_theirs = await _row(services, theirs.id)

    now = dt.datetime.now(dt.UTC)
    thread_id = f"process:{uuid.uuid4()}"
    graph = build(services.settings).compile(checkpointer=services.checkpointer, name=GRAPH)
    ctx = Context(user_id=user.id, thread_id=thread_id, now=now, services=services)
    config: RunnableConfig = {**run_config(services.settings), "configurable": {"thread_id": thread_id}}
    ids = [run.id, done.id, theirs.id, stretch.id, unknown, run.id]

    out = await graph.ainvoke({"mission_ids": ids}, config, context=ctx)

    assert set(out) == {"results", "processed", "failed"}
    assert [r["mission_id"] for r in out["results"]] == [run.id, done.id, theirs.id, stretch.id, unknown]
    assert [(r["ok"], r["reason"]) for r in out["results"]] == [
        (True, None),
        (False, "mission is completed"),
        (False, "mission not found"),
        (True, None),
        (False, "mission not found"),
    ]
    assert out["processed"] == 2 and out["failed"] == 3

    # The ok missions: the offline first step and the recomputed priority, stored.
    for result, m, goal_date in ((out["results"][0], run, target), (out["results"][3], stretch, None)):
        row = await _row(services, m.id)
        expected = priority_score(
            estimated_minutes=m.estimated_minutes,
            created_at=row["created_at"],
            now=now,
            target_date=goal_date,
        )
        assert row["first_step"] == result["first_step"]
        assert f'"{m.title}"' in row["first_step"]
        assert row["priority_score"] == result["priority_score"] == expected
    assert (await _row(services, run.id))["priority_score"] != priority_score(
        estimated_minutes=30,
        created_at=(await _row(services, run.id))["created_at"],
        now=now,
        target_date=None,
    )  # the goal's target date was used

    # The completed mission and the other user's mission are untouched.
    done_row = await _row(services, done.id)
    assert done_row["first_step"] is None and done_row["priority_score"] == 0.0
    assert done_row["status"] == "completed"
    assert await _row(services, theirs.id) == before_theirs
    assert before_theirs["first_step"] is None

    # One model call per ok mission, recorded for this user at the documented site.
    usage = await services.db.fetch(
        "SELECT site FROM llm_usage WHERE user_id = %s AND site = 'missions.prepare'", (user.id,)
    )
    assert len(usage) == 2
    assert await services.db.fetch("SELECT site FROM llm_usage WHERE user_id = %s", (other.id,)) == []

    # Checkpointed on Postgres and finished.
    snap = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    assert snap.next == ()
    assert snap.values["results"] == out["results"]


async def test_rerunning_a_batch_rewrites_the_same_rows(services) -> None:
    """Idempotent: running the same batch again (a retried background run) stores the same
    first step and priority, and reports the same results."""
    user = await services.users.ensure(f"process-rerun-{uuid.uuid4().hex[:8]}")
    mission = await services.missions.create_once(
        user.id,
        uuid.uuid4(),
        title="Water the plants",
        description="",
        estimated_minutes=5,
        energy_level="low",
        kind="regular",
    )
    graph = build(services.settings).compile(checkpointer=services.checkpointer, name=GRAPH)
    now = dt.datetime.now(dt.UTC)
    outs = []
    for _ in range(2):
        thread_id = f"process:{uuid.uuid4()}"
        ctx = Context(user_id=user.id, thread_id=thread_id, now=now, services=services)
        config: RunnableConfig = {**run_config(services.settings), "configurable": {"thread_id": thread_id}}
        outs.append(await graph.ainvoke({"mission_ids": [mission.id]}, config, context=ctx))

    assert outs[0] == outs[1]
    assert outs[0]["processed"] == 1
    row = await _row(services, mission.id)
    assert row["first_step"] == outs[0]["results"][0]["first_step"]
    assert row["priority_score"] == outs[0]["results"][0]["priority_score"]
