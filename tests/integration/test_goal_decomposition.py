"""goal_decomposition on the embedded Postgres with the real services: the rows a plan leaves
(milestones 1..n, 1-5 pending missions each, 5-120 minutes, priority scores, owner and goal),
idempotent re-runs and concurrent runs (the goal row lock), validation feedback, failures that
store nothing, the owner check, and a background run streaming its milestones."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from core.errors import NotFound
from engine import RunRequest
from graphs.goal_decomposition import GRAPH, build
from nodes.context import Context
from services.llm.answers.goal_decomposition import milestone_count_for
from services.llm.gateway import ModelGateway
from state.goal_decomposition import GoalAnalysis, MilestonePlan, MissionPlan
from state.goals import Goal
from tests.support.engine import engine_for
from tests.support.models import ScriptedChatModel

DESCRIPTION = (
    "I want to play three songs on the guitar at my sister's wedding in August. I know a few "
    "chords but I freeze when people watch."
)


async def new_goal(services, title: str = "Learn to play the guitar", description: str = DESCRIPTION):
    user = await services.users.ensure(f"decompose-{uuid.uuid4().hex[:10]}")
    goal = await services.goals.create(
        user.id,
        goal_id=uuid.uuid4(),
        title=title,
        description=description,
        value_category="craft",
        target_date=None,
        emotional_driver=None,
    )
    return user, goal


def with_model(services, model: ScriptedChatModel):
    return dataclasses.replace(
        services, llm=ModelGateway(services.settings, {"cheap": model, "premium": model}, kind="offline")
    )


async def decompose(svc, user_id: uuid.UUID, goal_id: str) -> dict[str, Any]:
    graph = build(svc.settings).compile(checkpointer=svc.checkpointer)
    thread_id = f"decompose-test:{uuid.uuid4()}"
    ctx = Context(user_id=user_id, thread_id=thread_id, now=datetime.now(UTC), services=svc)
    return await graph.ainvoke({"goal_id": goal_id}, {"configurable": {"thread_id": thread_id}}, context=ctx)


async def rows(services, goal_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    gid = uuid.UUID(goal_id)
    milestones = await services.db.fetch(
        "SELECT * FROM milestones WHERE goal_id = %s ORDER BY sequence", (gid,)
    )
    missions = await services.db.fetch("SELECT * FROM missions WHERE goal_id = %s", (gid,))
    return milestones, missions


def check_rows(goal: Goal, user_id: uuid.UUID, milestones: list[dict], missions: list[dict]) -> None:
    assert 3 <= len(milestones) <= 7
    assert [m["sequence"] for m in milestones] == list(range(1, len(milestones) + 1))
    assert all(str(m["goal_id"]) == goal.id for m in milestones)
    by_milestone: dict[uuid.UUID, list[dict]] = {m["id"]: [] for m in milestones}
    for mission in missions:
        by_milestone[mission["milestone_id"]].append(mission)  # every mission is under a milestone
        assert mission["user_id"] == user_id and str(mission["goal_id"]) == goal.id
        assert 5 <= mission["estimated_minutes"] <= 120
        assert mission["energy_level"] in ("low", "medium", "high")
        assert mission["status"] == "pending" and mission["kind"] == "regular"
        assert mission["value_category"] == goal.value_category
        assert mission["priority_score"] is not None and 0 < mission["priority_score"] <= 1
        assert mission["completed_at"] is None
    assert all(1 <= len(batch) <= 5 for batch in by_milestone.values())


async def test_a_goal_is_decomposed_into_stored_milestones_and_missions(services) -> None:
    user, goal = await new_goal(services)

    out = await decompose(services, user.id, goal.id)  # the service's own (offline) model

    milestones, missions = await rows(services, goal.id)
    check_rows(goal, user.id, milestones, missions)
    assert len(milestones) == milestone_count_for(goal.title, goal.description)
    assert out["created"] is True and out["goal_id"] == goal.id
    assert (out["milestones"], out["missions"]) == (len(milestones), len(missions))
    assert out["complexity"] in ("low", "medium", "high")
    assert out["plan"] == await services.goals.plan(uuid.UUID(goal.id))
    assert all(goal.title in m["title"] for m in milestones)  # the goal's own words
    assert {m["energy_level"] for m in missions} == {"low", "medium", "high"}  # a triad is possible
    assert len({m["estimated_minutes"] for m in missions}) >= 3
    usage = await services.db.fetch(
        "SELECT site, count(*) AS n FROM llm_usage WHERE user_id = %s GROUP BY site", (user.id,)
    )
    assert {r["site"]: r["n"] for r in usage} == {
        "decompose.analyse": 1,
        "decompose.milestones": 1,
        "decompose.missions": len(milestones),
    }


async def test_running_twice_stores_once_and_the_second_run_calls_no_model(services) -> None:
    user, goal = await new_goal(services)
    first = await decompose(services, user.id, goal.id)
    before = await rows(services, goal.id)

    model = ScriptedChatModel()
    second = await decompose(with_model(services, model), user.id, goal.id)

    assert model.calls == []
    assert second["created"] is False
    assert (second["milestones"], second["missions"]) == (first["milestones"], first["missions"])
    after = await rows(services, goal.id)
    assert [r["id"] for r in after[0]] == [r["id"] for r in before[0]]
    assert sorted(r["id"] for r in after[1]) == sorted(r["id"] for r in before[1])
    assert second["plan"] == first["plan"]


async def test_concurrent_runs_for_one_goal_store_one_plan(services) -> None:
    user, goal = await new_goal(services)
    # slow analysis: both runs pass load_goal before either stores, so both reach store_plan
    model = ScriptedChatModel().delay(GoalAnalysis, 0.1)
    svc = with_model(services, model)

    a, b = await asyncio.gather(decompose(svc, user.id, goal.id), decompose(svc, user.id, goal.id))

    assert model.count(GoalAnalysis) == 2  # both really planned
    assert sorted([a["created"], b["created"]]) == [False, True]  # the goal row lock decided
    milestones, missions = await rows(services, goal.id)
    check_rows(goal, user.id, milestones, missions)
    winner = a if a["created"] else b
    assert (len(milestones), len(missions)) == (winner["milestones"], winner["missions"])
    assert a["plan"] == b["plan"]  # the loser reports the stored plan, not its own draft


async def test_too_few_milestones_are_fed_back_then_the_valid_plan_is_stored(services) -> None:
    user, goal = await new_goal(services)
    two = json.dumps({"milestones": [{"title": "Learn chords"}, {"title": "Play at the wedding"}]})
    model = ScriptedChatModel().script(MilestonePlan, two)

    out = await decompose(with_model(services, model), user.id, goal.id)

    first, second = model.prompts(MilestonePlan)
    assert isinstance(second[-1], HumanMessage) and second[:-1] == first
    assert "not a valid MilestonePlan" in second[-1].text and "at least 3" in second[-1].text
    milestones, missions = await rows(services, goal.id)
    check_rows(goal, user.id, milestones, missions)
    assert out["created"] is True and out["milestones"] == len(milestones)
    assert "Play at the wedding" not in [m["title"] for m in milestones]


async def test_output_that_stays_invalid_fails_the_run_and_stores_nothing(services) -> None:
    user, goal = await new_goal(services)
    invalid = json.dumps({"missions": []})
    svc = with_model(services, ScriptedChatModel().always(MissionPlan, invalid))

    async with engine_for(svc) as engine:
        record = await engine.run(RunRequest(GRAPH, {"goal_id": goal.id}, user=user.id, background=True))

    assert await rows(services, goal.id) == ([], [])
    run = await services.runs.get(record.id, user.id)
    assert run.status == "error" and run.error_type == "ModelOutputInvalid"
    assert "MissionPlan output stayed invalid" in run.error


async def test_someone_elses_goal_is_not_found_and_untouched(services) -> None:
    _, goal = await new_goal(services)
    intruder = await services.users.ensure(f"intruder-{uuid.uuid4().hex[:10]}")
    model = ScriptedChatModel()

    with pytest.raises(NotFound):
        await decompose(with_model(services, model), intruder.id, goal.id)

    assert model.calls == []
    assert await rows(services, goal.id) == ([], [])


async def test_a_background_run_streams_each_milestone_and_records_the_result(services) -> None:
    user, goal = await new_goal(services)
    model = ScriptedChatModel().delay(MissionPlan, 0.05)
    svc = with_model(services, model)

    async with engine_for(svc) as engine:
        record = await engine.submit(RunRequest(GRAPH, {"goal_id": goal.id}, user=user.id, background=True))
        events = [e.data async for e in engine.events(record.id) if e.name == "custom"]
        out = (await engine.wait(record.id)).output

    milestones, missions = await rows(services, goal.id)
    streamed = sorted((e for e in events if e["type"] == "milestone"), key=lambda e: e["sequence"])
    assert [e["sequence"] for e in streamed] == [m["sequence"] for m in milestones]
    assert [e["title"] for e in streamed] == [m["title"] for m in milestones]
    assert sum(len(e["missions"]) for e in streamed) == len(missions)
    assert all(
        set(m) == {"title", "estimated_minutes", "energy_level"} for e in streamed for m in e["missions"]
    )
    assert 1 < model.peak(MissionPlan) <= svc.settings.decompose_concurrency  # bound by compile_workflow
    assert out["created"] is True and out["milestones"] == len(milestones)
    run = await services.runs.get(record.id, user.id)
    assert run.status == "success" and run.output["missions"] == len(missions)
