"""The goal_creation graph's logic (seed: Epic 2 + Epic 3), run for real by LangGraph over a
scripted model and in-memory stores: the goal is created with the emotion behind it, remembered
as a project memory, its decomposition started as a background run and the user notified, every
write keyed by the goal so a resumed run does each once; a failed context branch degrades. No
Postgres, no network (tests/api/test_goals_api.py runs it behind the API)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from domain.ids import stable_id
from graphs.goal_creation import GRAPH, build
from nodes.context import Context
from services.runs import thread_for
from state.goal_creation import GoalCreationInput
from state.schemas import EmotionScores
from tests.support.fakes import FakeServices, ScriptedChatModel, connection_error, fake_services, hit

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
Svc = FakeServices[ScriptedChatModel]


async def run(svc: Svc, goal_id: uuid.UUID) -> dict[str, Any]:
    graph = build(svc.settings).compile(name=GRAPH)
    ctx = Context(
        user_id=svc.user, thread_id=f"goal:{goal_id}", timezone="Europe/Paris", now=NOW, services=svc
    )
    inputs: GoalCreationInput = {
        "goal_id": str(goal_id),
        "title": "Run a half marathon",
        "description": "I am scared I will give up again.",
        "value_category": "health",
        "target_date": "2026-10-04",
    }
    return await graph.ainvoke(inputs, context=ctx)


async def test_a_goal_is_created_remembered_planned_and_announced_once() -> None:
    svc = fake_services(hits={"project": [hit("User created goal 'Run a 10k'.", "project")]})
    svc.model.script(EmotionScores, EmotionScores(fear=0.8))
    goal_id = uuid.uuid4()

    out = await run(svc, goal_id)

    goal = out["goal"]
    assert (goal.id, goal.title, goal.emotional_driver) == (str(goal_id), "Run a half marathon", "fear")
    assert out["emotion"].dominant == "fear" and out["degraded"] == []
    assert [h.content for h in out["similar_goals"]] == ["User created goal 'Run a 10k'."]
    (memory,) = svc.memory.added
    assert memory["tier"] == "project" and memory["memory_id"] == stable_id(goal.id, "goal_memory")
    assert memory["metadata"]["goal_id"] == goal.id and memory["metadata"]["emotional_state"]["fear"] == 0.8
    run_id = stable_id(goal.id, "decomposition")
    assert out["decomposition_run_id"] == str(run_id)
    assert svc.runs.started[run_id] == {
        "workflow": "goal_decomposition",
        "thread_id": thread_for("goal_decomposition", goal.id),
        "user_id": svc.user,
        "input": {"goal_id": goal.id},
    }
    (note,) = svc.notifications.rows.values()
    assert note["kind"] == "goal_created" and note["data"] == {"goal_id": goal.id}

    again = await run(svc, goal_id)  # a resumed or retried run writes nothing twice

    assert again["decomposition_run_id"] == out["decomposition_run_id"]
    assert len(svc.goals.goals) == 1 and len(svc.runs.started) == 1 and len(svc.notifications.rows) == 1
    assert set(svc.memory.stored) == {str(stable_id(goal.id, "goal_memory"))}


async def test_failed_context_branches_degrade_and_the_goal_is_still_created() -> None:
    svc = fake_services()
    svc.model.fail("structured", connection_error())  # every attempt: the branch gives up
    svc.memory.fail(connection_error())  # retrieve

    out = await run(svc, uuid.uuid4())

    assert sorted(out["degraded"]) == ["detect_goal_emotion", "recall_similar_goals"]
    assert out["goal"].emotional_driver == "neutral" and out["similar_goals"] == []
    assert out["decomposition_run_id"]
