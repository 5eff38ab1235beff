"""Nodes of nightly_maintenance (seed: "Parallel Background Jobs"): four independent tasks in
parallel, each isolated (a failure is recorded by its error handler), then a report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

from langgraph.runtime import Runtime

from core.logging import get_logger
from core.settings import Settings
from domain.calendar import iso_week, week_bounds
from domain.narrative import check_unlocks
from nodes.context import RunContext
from nodes.kit import Update, bounded_map, observed
from nodes.ports import MaintenancePort, ProgressPort
from state.nightly_maintenance import MaintenanceState

log = get_logger("delight.jobs")
GRAPH = "nightly_maintenance"


class NightlyMaintenanceServices(Protocol):
    """What nightly_maintenance's nodes use of the services (a system run: no user)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def progress(self) -> ProgressPort: ...
    @property
    def maintenance(self) -> MaintenancePort: ...


MaintenanceRuntime = Runtime[RunContext[NightlyMaintenanceServices]]


@observed(GRAPH)
async def prune_task_memories(state: MaintenanceState, runtime: MaintenanceRuntime) -> Update:
    svc = runtime.context.services
    pruned = await svc.maintenance.prune_expired_task_memories(runtime.context.now)
    return {"results": {"prune_task_memories": {"ok": True, "pruned": pruned}}}


@observed(GRAPH)
async def consolidate_progress(state: MaintenanceState, runtime: MaintenanceRuntime) -> Update:
    """Roll up the ISO week of `day` (so far) for every user, in one statement."""
    svc = runtime.context.services
    week = iso_week(dt.date.fromisoformat(state["day"]))
    start, end = week_bounds(week)
    users = await svc.maintenance.consolidate_week(week, start, end)
    return {"results": {"consolidate_progress": {"ok": True, "week": week, "users": users}}}


@observed(GRAPH)
async def update_dci(state: MaintenanceState, runtime: MaintenanceRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    day = dt.date.fromisoformat(state["day"])

    async def one(user: dict[str, Any]) -> None:
        progress = await svc.progress.recent(user["id"], user["timezone"], ctx.now)
        await svc.maintenance.store_dci(user["id"], day, progress)

    outcomes = await bounded_map(await svc.maintenance.users(), one, svc.settings.job_concurrency)
    failures = {str(o.item["id"]): o.error for o in outcomes if not o.ok}
    for user_id, reason in failures.items():
        log.warning("dci update failed", extra={"user_id": user_id, "error": reason})
    return {"results": {"update_dci": {"ok": not failures, "users": len(outcomes), "failed": failures}}}


@observed(GRAPH)
async def check_hidden_quests(state: MaintenanceState, runtime: MaintenanceRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services

    async def one(user: dict[str, Any]) -> list[str]:
        stats = await svc.maintenance.quest_stats(user["id"])
        progress = await svc.progress.recent(user["id"], user["timezone"], ctx.now)
        metrics = {**stats, "streak_days": progress.streak_days}
        new = check_unlocks(metrics, stats["unlocked"] or [])
        return [q.key for q in new if await svc.maintenance.unlock(user["id"], q.key, q.title, q.description)]

    outcomes = await bounded_map(await svc.maintenance.users(), one, svc.settings.job_concurrency)
    unlocked = {str(o.item["id"]): o.result for o in outcomes if o.ok and o.result}
    failures = {str(o.item["id"]): o.error for o in outcomes if not o.ok}
    return {
        "results": {"check_hidden_quests": {"ok": not failures, "unlocked": unlocked, "failed": failures}}
    }


@observed(GRAPH)
async def report(state: MaintenanceState, runtime: MaintenanceRuntime) -> Update:
    results = state.get("results", {})
    for task, result in sorted(results.items()):
        log.info("maintenance task", extra={"task": task, **result})
    return {"failed": [t for t, r in results.items() if not r.get("ok")]}


def failed_task(node: str) -> Callable[[], Update]:
    """Fallback for a maintenance task: record the failure; the other tasks carry on."""

    def update() -> Update:
        return {"results": {node: {"ok": False}}}

    return update
