"""Nodes of nightly_maintenance (seed: "Parallel Background Jobs"): four independent tasks in
parallel, each isolated (a failure is recorded by its error handler), then a report."""

from __future__ import annotations

import datetime as dt

from langgraph.runtime import Runtime

from core.logging import get_logger
from domain.calendar import iso_week, week_bounds
from domain.narrative import check_unlocks
from nodes.context import Context, observed
from nodes.fanout import bounded_map
from state.nightly_maintenance import MaintenanceState

log = get_logger("delight.jobs")
NIGHTLY = "nightly_maintenance"


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
