"""Nodes of weekly_quests (seed: "Sequential Multi-Step Job"): the user's active goals, how they
actually work, this week's quests from one model call, the quests stored as missions, and the
user notified. Every write is keyed by user and week."""

from __future__ import annotations

import uuid

from langgraph.runtime import Runtime

from core.logging import get_logger
from domain.ids import stable_id
from domain.missions import priority_score
from nodes.context import Context, observed
from prompts.weekly_quests import QUESTS_READY_TITLE, quests_ready_body, weekly_quests_messages
from state.weekly_quests import QuestPlan, WeeklyQuestsState

log = get_logger("delight.jobs")
WEEKLY = "weekly_quests"


@observed(WEEKLY)
async def load_active_goals(state: WeeklyQuestsState, runtime: Runtime[Context]) -> dict:
    svc = await runtime.context.svc()
    goals = await svc.goals.list(await runtime.context.user(), "active")
    return {"goals": goals[:3], **({} if goals else {"reason": "no active goals: no quests this week"})}


def has_goals(state: WeeklyQuestsState) -> str:
    return "analyse_completion_patterns" if state.get("goals") else "__end__"


@observed(WEEKLY)
async def analyse_completion_patterns(state: WeeklyQuestsState, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    svc = await ctx.svc()
    return {"patterns": await svc.maintenance.completion_patterns(await ctx.user(), ctx.timezone, ctx.clock)}


@observed(WEEKLY)
async def write_quests(state: WeeklyQuestsState, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    svc = await ctx.svc()
    goals = [{"title": g.title, "value_category": g.value_category} for g in state["goals"]]
    plan, _ = await svc.llm.structured(
        QuestPlan,
        weekly_quests_messages(goals, state.get("patterns", {}), state["week"]),
        site="jobs.weekly_quests",
        user_id=str(await ctx.user()),
    )
    return {"quests": plan.quests}


@observed(WEEKLY)
async def create_quest_missions(state: WeeklyQuestsState, runtime: Runtime[Context]) -> dict:
    """Ids derive from user, week and position: a retried job creates each quest once."""
    ctx = runtime.context
    svc = await ctx.svc()
    user = await ctx.user()
    goals = state["goals"]
    missions = []
    for i, q in enumerate(state["quests"]):
        goal = goals[min(q.goal_index, len(goals) - 1)]
        missions.append(
            await svc.missions.create_once(
                user,
                stable_id(user, "quest", state["week"], i),
                title=q.title,
                description=q.description,
                estimated_minutes=q.estimated_minutes,
                energy_level=q.energy_level,
                kind="quest",
                goal_id=uuid.UUID(goal.id),
                value_category=goal.value_category,
                priority=priority_score(
                    estimated_minutes=q.estimated_minutes,
                    created_at=ctx.clock,
                    now=ctx.clock,
                    target_date=goal.target_date,
                ),
            )
        )
    return {"missions": missions}


@observed(WEEKLY)
async def notify_quests(state: WeeklyQuestsState, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    svc = await ctx.svc()
    user = await ctx.user()
    n = len(state["missions"])
    await svc.notifications.record(
        user,
        kind="weekly_quests",
        title=QUESTS_READY_TITLE,
        body=quests_ready_body(n),
        data={"week": state["week"], "mission_ids": [m.id for m in state["missions"]]},
        dedupe_key=f"weekly_quests:{user}:{state['week']}",
    )
    return {"notified": True, "reason": f"{n} quests created"}
