"""Nodes of the background-job workflows: weekly_quests (sequential) and nightly_maintenance
(four independent tasks in parallel, each isolated)."""

from __future__ import annotations

import datetime as dt
import uuid

from langgraph.runtime import Runtime

from core.logging import get_logger
from domain.ids import stable_id
from domain.missions import priority_score
from domain.narrative import check_unlocks
from nodes.context import Context, observed
from nodes.fanout import bounded_map
from prompts.weekly_quests import QUESTS_READY_TITLE, quests_ready_body, weekly_quests_messages
from state.weekly_quests import MaintenanceState, QuestPlan, WeeklyQuestsState

log = get_logger("delight.jobs")
WEEKLY = "weekly_quests"
NIGHTLY = "nightly_maintenance"


def week_bounds(week: str) -> tuple[dt.datetime, dt.datetime]:
    """[Monday 00:00, next Monday 00:00) UTC of an ISO week like '2026-W48'."""
    year, num = week.split("-W")
    start = dt.datetime.fromisocalendar(int(year), int(num), 1).replace(tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=7)


def iso_week(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


# --- weekly_quests ---------------------------------------------------------------------------


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


# --- nightly_maintenance ---------------------------------------------------------------------


@observed(NIGHTLY)
async def prune_task_memories(state: MaintenanceState, runtime: Runtime[Context]) -> dict:
    svc = await runtime.context.svc()
    pruned = await svc.maintenance.prune_expired_task_memories(runtime.context.clock)
    return {"results": {"prune_task_memories": {"ok": True, "pruned": pruned}}}


@observed(NIGHTLY)
async def consolidate_progress(state: MaintenanceState, runtime: Runtime[Context]) -> dict:
    """Roll up the ISO week of `day` (so far) for every user, in one statement."""
    svc = await runtime.context.svc()
    week = iso_week(dt.date.fromisoformat(state["day"]))
    start, end = week_bounds(week)
    users = await svc.maintenance.consolidate_week(week, start, end)
    return {"results": {"consolidate_progress": {"ok": True, "week": week, "users": users}}}


@observed(NIGHTLY)
async def update_dci(state: MaintenanceState, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    svc = await ctx.svc()
    day = dt.date.fromisoformat(state["day"])

    async def one(user: dict) -> None:  # type: ignore[type-arg]
        progress = await svc.progress.recent(user["id"], user["timezone"], ctx.clock)
        await svc.maintenance.store_dci(user["id"], day, progress)

    outcomes = await bounded_map(await svc.maintenance.users(), one, svc.settings.job_concurrency)
    failures = {str(o.item["id"]): o.error for o in outcomes if not o.ok}
    for user_id, reason in failures.items():
        log.warning("dci update failed", extra={"user_id": user_id, "error": reason})
    return {"results": {"update_dci": {"ok": not failures, "users": len(outcomes), "failed": failures}}}


@observed(NIGHTLY)
async def check_hidden_quests(state: MaintenanceState, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    svc = await ctx.svc()

    async def one(user: dict) -> list[str]:  # type: ignore[type-arg]
        stats = await svc.maintenance.quest_stats(user["id"])
        progress = await svc.progress.recent(user["id"], user["timezone"], ctx.clock)
        metrics = {**stats, "streak_days": progress.streak_days}
        new = check_unlocks(metrics, stats["unlocked"] or [])
        return [q.key for q in new if await svc.maintenance.unlock(user["id"], q.key, q.title, q.description)]

    outcomes = await bounded_map(await svc.maintenance.users(), one, svc.settings.job_concurrency)
    unlocked = {str(o.item["id"]): o.result for o in outcomes if o.ok and o.result}
    failures = {str(o.item["id"]): o.error for o in outcomes if not o.ok}
    return {
        "results": {"check_hidden_quests": {"ok": not failures, "unlocked": unlocked, "failed": failures}}
    }


@observed(NIGHTLY)
async def report(state: MaintenanceState, runtime: Runtime[Context]) -> dict:
    results = state.get("results", {})
    for task, result in sorted(results.items()):
        log.info("maintenance task", extra={"task": task, **result})
    return {"failed": [t for t, r in results.items() if not r.get("ok")]}


def failed_task(node: str):  # type: ignore[no-untyped-def]
    """Fallback for a maintenance task: record the failure; the other tasks carry on."""

    def update() -> dict:
        return {"results": {node: {"ok": False}}}

    return update
