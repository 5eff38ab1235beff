"""Nodes of goal_decomposition (seed Pattern 2, sequential pipeline). Each step depends on the
previous one; only the per-milestone mission planning fans out (one `Send` per milestone).
Nothing is written to the database before `store_plan`, the last step, so a run that fails
anywhere earlier leaves no partial plan behind."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from core.errors import NotFound
from nodes.context import Context
from nodes.kit import Update, emit, observed
from nodes.ports import GoalsPort, LlmPort
from prompts.goal_decomposition import analysis_messages, milestone_messages, mission_messages
from state.goal_decomposition import (
    DecompositionState,
    GoalAnalysis,
    MilestoneDraft,
    MilestonePlan,
    MilestoneTask,
    MissionPlan,
    goal_of,
    milestone_drafts,
    mission_drafts,
)

GRAPH = "goal_decomposition"


class GoalDecompositionServices(Protocol):
    """What goal_decomposition's nodes use of the services."""

    @property
    def llm(self) -> LlmPort: ...
    @property
    def goals(self) -> GoalsPort: ...


DecompositionRuntime = Runtime[Context[GoalDecompositionServices]]


def _goal_uuid(goal_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(goal_id))
    except ValueError:
        raise NotFound("goal not found") from None


def summary(plan: dict[str, Any]) -> dict[str, int]:
    """Milestone and mission counts of a stored plan (`Goals.plan`)."""
    return {
        "milestones": len(plan["milestones"]),
        "missions": sum(len(ms["missions"]) for ms in plan["milestones"]),
    }


@observed(GRAPH)
async def load_goal(state: DecompositionState, runtime: DecompositionRuntime) -> Update:
    """Owner-checked read (NotFound for someone else's goal). A goal that already has a plan
    is answered from the database: `created: false`, no model call."""
    ctx = runtime.context
    svc = ctx.services
    goal = await svc.goals.get(ctx.user_id, _goal_uuid(state["goal_id"]))
    update: dict[str, Any] = {
        "goal_id": goal.id,
        "goal": goal.model_dump(mode="json"),
        "mission_plans": Overwrite({}),  # nothing carried over from an earlier run on the thread
    }
    plan = await svc.goals.plan(uuid.UUID(goal.id))
    if plan["milestones"]:
        return {
            **update,
            "has_plan": True,
            "created": False,
            "complexity": None,
            "plan": plan,
            **summary(plan),
        }
    return {**update, "has_plan": False}


@observed(GRAPH)
async def analyse_goal(state: DecompositionState, runtime: DecompositionRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    analysis, _ = await svc.llm.structured(
        GoalAnalysis,
        analysis_messages(goal_of(state["goal"])),
        site="decompose.analyse",
        user_id=str(ctx.user_id),
    )
    return {"analysis": analysis.model_dump(mode="json"), "complexity": analysis.complexity}


@observed(GRAPH)
async def plan_milestones(state: DecompositionState, runtime: DecompositionRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    plan, _ = await svc.llm.structured(
        MilestonePlan,
        milestone_messages(goal_of(state["goal"]), GoalAnalysis.model_validate(state["analysis"])),
        site="decompose.milestones",
        user_id=str(ctx.user_id),
    )
    return {"milestone_plan": [m.model_dump(mode="json") for m in plan.milestones]}


@observed(GRAPH)
async def plan_missions(state: MilestoneTask, runtime: DecompositionRuntime) -> Update:
    """Missions of one milestone (`state` is its `Send` task); streams a `milestone` event as
    soon as they are planned."""
    ctx = runtime.context
    svc = ctx.services
    milestone = MilestoneDraft.model_validate(state["milestone"])
    plan, _ = await svc.llm.structured(
        MissionPlan,
        mission_messages(
            goal_of(state["goal"]),
            GoalAnalysis.model_validate(state["analysis"]),
            sequence=state["sequence"],
            total=state["total"],
            milestone=milestone,
            outline=state["others"],
        ),
        site="decompose.missions",
        user_id=str(ctx.user_id),
    )
    emit(
        runtime,
        {
            "type": "milestone",
            "sequence": state["sequence"],
            "title": milestone.title,
            "missions": [
                {"title": d.title, "estimated_minutes": d.estimated_minutes, "energy_level": d.energy_level}
                for d in plan.missions
            ],
        },
    )
    return {"mission_plans": {state["sequence"]: [d.model_dump(mode="json") for d in plan.missions]}}


@observed(GRAPH)
async def store_plan(state: DecompositionState, runtime: DecompositionRuntime) -> Update:
    """The only write: milestones and missions in one transaction (`Goals.store_plan` locks the
    goal row and keeps a plan stored meanwhile by a concurrent run: `created: false` then)."""
    ctx = runtime.context
    svc = ctx.services
    goal = goal_of(state["goal"])
    milestones = milestone_drafts(state)
    missions = mission_drafts(state, len(milestones))
    _, _, created = await svc.goals.store_plan(goal, milestones, missions, ctx.now)
    plan = await svc.goals.plan(uuid.UUID(goal.id))
    return {
        "created": created,
        "plan": plan,
        **summary(plan),
        "complexity": state.get("complexity") if created else None,
    }
