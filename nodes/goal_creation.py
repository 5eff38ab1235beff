"""Nodes of goal_creation: parallel context (emotion, similar past goals) → create the goal →
remember it → in parallel start the decomposition and notify the user."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from langgraph.runtime import Runtime

from core.settings import Settings
from domain.ids import stable_id
from nodes.context import Context
from nodes.kit import Update, observed
from nodes.ports import GoalsPort, LlmPort, MemoryPort, NotificationsPort, RunsPort
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


class GoalCreationServices(Protocol):
    """What goal_creation's nodes use of the services."""

    @property
    def settings(self) -> Settings: ...
    @property
    def llm(self) -> LlmPort: ...
    @property
    def memory(self) -> MemoryPort: ...
    @property
    def goals(self) -> GoalsPort: ...
    @property
    def notifications(self) -> NotificationsPort: ...
    @property
    def runs(self) -> RunsPort: ...


GoalCreationRuntime = Runtime[Context[GoalCreationServices]]


@observed(GRAPH)
async def detect_goal_emotion(state: GoalCreationState, runtime: GoalCreationRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    scores, _ = await svc.llm.structured(
        EmotionScores,
        emotion_messages(goal_emotion_text(state["title"], state["description"])),
        site="goals.detect_emotion",
        user_id=str(ctx.user_id),
    )
    return {"emotion": Emotion.from_scores(scores.model_dump())}


@observed(GRAPH)
async def recall_similar_goals(state: GoalCreationState, runtime: GoalCreationRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    hits = await svc.memory.retrieve(
        ctx.user_id,
        similar_goals_query(state["title"]),
        now=ctx.now,
        quotas={"personal": 0, "project": svc.settings.memory_quota_project, "task": 0},
    )
    return {"similar_goals": hits["project"]}


@observed(GRAPH)
async def create_goal(state: GoalCreationState, runtime: GoalCreationRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    emotion = state.get("emotion") or Emotion()
    target = state.get("target_date")
    goal = await svc.goals.create(
        ctx.user_id,
        goal_id=uuid.UUID(state["goal_id"]),
        title=state["title"],
        description=state["description"],
        value_category=state["value_category"],
        target_date=dt.date.fromisoformat(target) if target else None,
        emotional_driver=emotion.dominant,
    )
    return {"goal": goal}


@observed(GRAPH)
async def remember_goal(state: GoalCreationState, runtime: GoalCreationRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    goal = state["goal"]
    emotion = state.get("emotion") or Emotion()
    memory_id, _ = await svc.memory.add(
        ctx.user_id,
        "project",
        goal_memory(goal.title, goal.description),
        {
            "goal_id": goal.id,
            "emotional_state": emotion.scores,
            "tags": ["goal_creation", "active_goal", goal.value_category],
        },
        now=ctx.now,
        memory_id=stable_id(goal.id, "goal_memory"),
    )
    return {"memory_id": memory_id}


@observed(GRAPH)
async def start_decomposition(state: GoalCreationState, runtime: GoalCreationRuntime) -> Update:
    """A background run the user can follow at GET /api/v1/runs/{id}; its id is derived from
    the goal, so a resumed goal_creation does not start a second one."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
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
async def notify_created(state: GoalCreationState, runtime: GoalCreationRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    goal = state["goal"]
    await svc.notifications.record(
        ctx.user_id,
        kind="goal_created",
        title=GOAL_CREATED_TITLE,
        body=goal_created_body(goal.title),
        data={"goal_id": goal.id},
        dedupe_key=f"goal_created:{goal.id}",
    )
    return {"notified": True}


def neutral_emotion() -> Update:
    return {"emotion": Emotion()}


def no_similar_goals() -> Update:
    return {"similar_goals": []}
