"""Nodes of weekly_quests (seed: "Sequential Multi-Step Job"): the user's active goals, how they
actually work, this week's quests from one model call, the quests stored as missions, and the
user notified. Every write is keyed by user and week."""

from __future__ import annotations

import uuid
from typing import Protocol

from langgraph.runtime import Runtime

from core.logging import get_logger
from domain.ids import stable_id
from domain.missions import priority_score
from nodes.context import Context
from nodes.kit import Update, observed
from nodes.ports import GoalsPort, LlmPort, MaintenancePort, MissionsPort, NotificationsPort
from prompts.weekly_quests import QUESTS_READY_TITLE, quests_ready_body, weekly_quests_messages
from state.weekly_quests import QuestPlan, WeeklyQuestsState

log = get_logger("delight.jobs")
GRAPH = "weekly_quests"


class WeeklyQuestsServices(Protocol):
    """What weekly_quests' nodes use of the services."""

    @property
    def llm(self) -> LlmPort: ...
    @property
    def goals(self) -> GoalsPort: ...
    @property
    def missions(self) -> MissionsPort: ...
    @property
    def notifications(self) -> NotificationsPort: ...
    @property
    def maintenance(self) -> MaintenancePort: ...


QuestsRuntime = Runtime[Context[WeeklyQuestsServices]]


@observed(GRAPH)
async def load_active_goals(state: WeeklyQuestsState, runtime: QuestsRuntime) -> Update:
    svc = runtime.context.services
    goals = await svc.goals.list(runtime.context.user_id, "active")
    return {"goals": goals[:3], **({} if goals else {"reason": "no active goals: no quests this week"})}


@observed(GRAPH)
async def analyse_completion_patterns(state: WeeklyQuestsState, runtime: QuestsRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    return {"patterns": await svc.maintenance.completion_patterns(ctx.user_id, ctx.timezone, ctx.now)}


@observed(GRAPH)
async def write_quests(state: WeeklyQuestsState, runtime: QuestsRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    goals = [{"title": g.title, "value_category": g.value_category} for g in state["goals"]]
    plan, _ = await svc.llm.structured(
        QuestPlan,
        weekly_quests_messages(goals, state.get("patterns", {}), state["week"]),
        site="jobs.weekly_quests",
        user_id=str(ctx.user_id),
    )
    return {"quests": plan.quests}


@observed(GRAPH)
async def create_quest_missions(state: WeeklyQuestsState, runtime: QuestsRuntime) -> Update:
    """Ids derive from user, week and position: a retried job creates each quest once."""
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
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
                    created_at=ctx.now,
                    now=ctx.now,
                    target_date=goal.target_date,
                ),
            )
        )
    return {"missions": missions}


@observed(GRAPH)
async def notify_quests(state: WeeklyQuestsState, runtime: QuestsRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
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
