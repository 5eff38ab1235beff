"""Nodes of goal_creation: parallel context (emotion, similar past goals) → create the goal →
remember it → in parallel start the decomposition and notify the user."""

from __future__ import annotations

import datetime as dt
import uuid

from langgraph.runtime import Runtime

from domain.ids import stable_id
from nodes.context import Context, observed
from prompts.common import emotion_messages
from prompts.goal_creation import (
    GOAL_CREATED_TITLE,
    goal_created_body,
    goal_emotion_text,
    goal_memory,
    similar_goals_query,
)
from services.runs import thread_for
from state.goal_creation import GoalCreationState
from state.schemas import Emotion, EmotionScores

GRAPH = "goal_creation"


@observed(GRAPH)
async def detect_goal_emotion(state: GoalCreationState, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    svc = await ctx.svc()
    scores, _ = await svc.llm.structured(
        EmotionScores,
        emotion_messages(goal_emotion_text(state["title"], state["description"])),
        site="goals.detect_emotion",
        user_id=str(await ctx.user()),
    )
    return {"emotion": Emotion.from_scores(scores.model_dump())}


@observed(GRAPH)
async def recall_similar_goals(state: GoalCreationState, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    svc = await ctx.svc()
    hits = await svc.memory.retrieve(
        await ctx.user(),
        similar_goals_query(state["title"]),
        now=ctx.clock,
        quotas={"personal": 0, "project": svc.settings.memory_quota_project, "task": 0},
    )
    return {"similar_goals": hits["project"]}


@observed(GRAPH)
async def create_goal(state: GoalCreationState, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    svc = await ctx.svc()
    emotion = state.get("emotion") or Emotion()
    target = state.get("target_date")
    goal = await svc.goals.create(
        await ctx.user(),
        goal_id=uuid.UUID(state["goal_id"]),
        title=state["title"],
        description=state["description"],
        value_category=state["value_category"],
        target_date=dt.date.fromisoformat(target) if target else None,
        emotional_driver=emotion.dominant,
    )
    return {"goal": goal}


@observed(GRAPH)
async def remember_goal(state: GoalCreationState, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    svc = await ctx.svc()
    goal = state["goal"]
    emotion = state.get("emotion") or Emotion()
    memory_id, _ = await svc.memory.add(
        await ctx.user(),
        "project",
        goal_memory(goal.title, goal.description),
        {
            "goal_id": goal.id,
            "emotional_state": emotion.scores,
            "tags": ["goal_creation", "active_goal", goal.value_category],
        },
        now=ctx.clock,
        memory_id=stable_id(goal.id, "goal_memory"),
    )
    return {"memory_id": memory_id}


@observed(GRAPH)
async def start_decomposition(state: GoalCreationState, runtime: Runtime[Context]) -> dict:
    """A background run the user can follow at GET /api/v1/runs/{id}; its id is derived from
    the goal, so a resumed goal_creation does not start a second one."""
    ctx = runtime.context
    svc = await ctx.svc()
    user = await ctx.user()
    goal_id = state["goal"].id
    run_id = stable_id(goal_id, "decomposition")
    await svc.runs.start_background(
        "goal_decomposition",
        run_id=run_id,
        thread_id=thread_for("goal_decomposition", goal_id),
        user_id=user,
        input={"goal_id": goal_id},
        timezone=ctx.timezone,
    )
    return {"decomposition_run_id": str(run_id)}


@observed(GRAPH)
async def notify_created(state: GoalCreationState, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    svc = await ctx.svc()
    goal = state["goal"]
    await svc.notifications.record(
        await ctx.user(),
        kind="goal_created",
        title=GOAL_CREATED_TITLE,
        body=goal_created_body(goal.title),
        data={"goal_id": goal.id},
        dedupe_key=f"goal_created:{goal.id}",
    )
    return {"notified": True}


def neutral_emotion() -> dict:
    return {"emotion": Emotion()}


def no_similar_goals() -> dict:
    return {"similar_goals": []}
