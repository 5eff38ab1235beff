"""The weekly_quests graph's logic (seed: "Sequential Multi-Step Job"), run for real by LangGraph
over a scripted model and in-memory stores: no active goal ends the run without a model call; the
quests become missions keyed by user, week and position, so a retried job creates nothing twice;
the user is told once. No Postgres, no network (tests/integration/test_jobs.py runs it as a job)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from domain.ids import stable_id
from graphs.weekly_quests import GRAPH, build, has_goals
from nodes.context import Context
from state.weekly_quests import QuestDraft, QuestPlan
from tests.support.fakes import FakeServices, ScriptedChatModel, fake_services

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # the Monday of 2026-W48
WEEK = "2026-W48"
Svc = FakeServices[ScriptedChatModel]


def quest(title: str, goal_index: int = 0) -> QuestDraft:
    return QuestDraft(
        title=title,
        description="one block",
        estimated_minutes=30,
        energy_level="medium",
        goal_index=goal_index,
    )


async def run(svc: Svc, user: uuid.UUID) -> dict[str, Any]:
    graph = build(svc.settings).compile(name=GRAPH)
    ctx = Context(user_id=user, thread_id=f"job:{GRAPH}:{user}:{WEEK}", now=NOW, services=svc)
    return await graph.ainvoke({"week": WEEK}, context=ctx)


async def test_no_active_goal_ends_the_run_without_a_model_call() -> None:
    svc = fake_services()
    user = uuid.uuid4()
    svc.goals.add(user, "Paused one", status="paused")

    out = await run(svc, user)

    assert out["reason"] == "no active goals: no quests this week"
    assert svc.model.calls == [] and svc.missions.rows == {} and svc.notifications.rows == {}
    assert has_goals({"week": WEEK, "goals": []}) == "__end__"


async def test_quests_become_missions_of_their_goals_once_per_week() -> None:
    svc = fake_services()
    user = uuid.uuid4()
    guitar = svc.goals.add(user, "Learn the guitar")
    novel = svc.goals.add(user, "Write a novel", value_category="growth")
    svc.maintenance.patterns = {"best_weekdays": ["Tue"]}
    svc.model.script(QuestPlan, QuestPlan(quests=[quest("Two chords"), quest("One page", goal_index=1)]))

    out = await run(svc, user)

    assert [m.title for m in out["missions"]] == ["Two chords", "One page"]
    assert [m.goal_id for m in out["missions"]] == [guitar.id, novel.id]
    assert [m.kind for m in out["missions"]] == ["quest", "quest"]
    assert [m.id for m in out["missions"]] == [str(stable_id(user, "quest", WEEK, i)) for i in (0, 1)]
    assert out["reason"] == "2 quests created"
    (note,) = svc.notifications.rows.values()
    assert note["kind"] == "weekly_quests" and note["data"]["mission_ids"] == [m.id for m in out["missions"]]
    assert svc.maintenance.args_of("completion_patterns") == [{"user_id": user}]

    again = await run(svc, user)  # the job retried: the same missions, no new notification

    assert [m.id for m in again["missions"]] == [m.id for m in out["missions"]]
    assert len(svc.missions.rows) == 2 and len(svc.notifications.rows) == 1
