"""The background jobs, as plain async functions of a `JobHost`, shared by the ARQ worker and
the in-process scheduler. Each runs its graph on a deterministic thread (job name + user +
period), so a retried job resumes instead of redoing finished steps; their writes are keyed."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
import openai
import psycopg
from langgraph.errors import NodeTimeoutError
from langgraph.graph.state import CompiledStateGraph
from psycopg_pool import PoolTimeout

from core.errors import Unavailable
from core.logging import get_logger
from domain.nudges import MIN_DAYS_INACTIVE
from graphs.runs import execute, resume_or_start
from nodes.context import Context
from nodes.fanout import bounded_map
from nodes.jobs import iso_week
from services.container import Services
from services.llm.retry import is_transient
from services.senders import Sender, build_senders
from state.nudge import Nudge

log = get_logger("delight.jobs")


class Queue(Protocol):
    async def enqueue(self, name: str, *args: Any, job_id: str) -> bool:
        """Enqueue `name(*args)` once per `job_id`; False when that job already exists."""
        ...


@dataclass
class JobHost:
    services: Services
    graphs: dict[str, CompiledStateGraph]
    queue: Queue
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    _senders: dict[str, Sender] | None = None
    _http: httpx.AsyncClient | None = None

    def senders(self) -> dict[str, Sender]:
        if self._senders is None:
            self._http = httpx.AsyncClient(timeout=10)
            self._senders = build_senders(self.services.settings, self.services.notifications, self._http)
        return self._senders

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()


def transient(err: BaseException) -> bool:
    """Worth another try: infrastructure hiccups, model rate limits and timeouts."""
    return isinstance(
        err, psycopg.OperationalError | PoolTimeout | Unavailable | TimeoutError | NodeTimeoutError
    ) or (isinstance(err, openai.OpenAIError) and is_transient(err))


def job_id(name: str, *parts: object) -> str:
    return ":".join([name, *(str(p) for p in parts)])


async def _run(
    host: JobHost,
    graph_name: str,
    payload: dict[str, Any],
    thread_id: str,
    user_id: str | None = None,
    timezone: str = "UTC",
) -> dict[str, Any]:
    ctx = Context(
        user_id=user_id, thread_id=thread_id, timezone=timezone, now=host.clock(), services=host.services
    )
    out = await resume_or_start(host.graphs[graph_name], payload, ctx)
    return {
        k: v for k, v in out.items() if k in ("week", "reason", "results", "failed", "swept", "dispatched")
    }


# --- per-item jobs ---------------------------------------------------------------------------


async def weekly_quests(host: JobHost, user_id: str, week: str) -> dict[str, Any]:
    row = await host.services.db.fetchrow("SELECT timezone FROM users WHERE id = %s", (uuid.UUID(user_id),))
    out = await _run(
        host,
        "weekly_quests",
        {"week": week},
        job_id("job:weekly_quests", user_id, week),
        user_id,
        row["timezone"] if row else "UTC",
    )
    missions = (
        await host.graphs["weekly_quests"].aget_state(
            {"configurable": {"thread_id": job_id("job:weekly_quests", user_id, week)}}
        )
    ).values.get("missions", [])
    return {**out, "missions": [m.id for m in missions]}


async def nightly_maintenance(host: JobHost, day: str) -> dict[str, Any]:
    return await _run(host, "nightly_maintenance", {"day": day}, job_id("job:nightly_maintenance", day))


async def nudge_sweep(host: JobHost, hour: str) -> dict[str, Any]:
    """personalized_nudge for every user inactive 2+ days (JOB_CONCURRENCY at a time, each user
    isolated, each on the thread `job:nudge:<user>:<local day>` so a re-run resumes or returns
    the day's result), then send every nudge that is due."""
    svc, now = host.services, host.clock()
    inactive = await svc.maintenance.inactive_users(now, MIN_DAYS_INACTIVE)

    async def plan(user: dict[str, Any]) -> bool:
        day = now.astimezone(ZoneInfo(user["timezone"])).date()
        ctx = Context(
            user_id=str(user["id"]),
            thread_id=job_id("job:nudge", user["id"], day),
            timezone=user["timezone"],
            now=now,
            services=svc,
        )
        out = await resume_or_start(host.graphs["personalized_nudge"], {}, ctx)
        return bool(out.get("scheduled"))

    planned = await bounded_map(inactive, plan, svc.settings.job_concurrency)
    failed = {str(o.item["id"]): o.error for o in planned if not o.ok}
    for user_id, reason in failed.items():
        log.warning("nudge planning failed", extra={"user_id": user_id, "error": reason})
    sent = await dispatch_due_nudges(host, now)
    return {
        "hour": hour,
        "swept": len(inactive),
        "scheduled": sum(1 for o in planned if o.ok and o.result),
        "failed": failed,
        "dispatched": sent,
    }


async def dispatch_due_nudges(host: JobHost, now: dt.datetime) -> dict[str, int]:
    """Send each due nudge through its channel; mark it sent (with its progress event) or
    failed. `mark_sent` only moves a still-scheduled nudge, so a re-run sends nothing twice
    that it already marked."""
    svc = host.services
    senders = host.senders()

    async def send(nudge: Nudge) -> None:
        try:
            await senders[nudge.channel].send(uuid.UUID(nudge.user_id), nudge.model_dump())
        except Exception as err:
            await svc.nudges.mark_failed(uuid.UUID(nudge.id), repr(err))
            raise
        await svc.nudges.mark_sent(uuid.UUID(nudge.id), now)

    outcomes = await bounded_map(await svc.nudges.due(now), send, svc.settings.job_concurrency)
    return {"sent": sum(o.ok for o in outcomes), "failed": sum(not o.ok for o in outcomes)}


async def run_workflow(
    host: JobHost, workflow: str, user_id: str, payload: dict[str, Any], run_id: str
) -> dict[str, Any]:
    """A background run of any registered workflow (e.g. goal_decomposition after goal creation)."""
    await execute(
        host.graphs[workflow],
        host.services,
        workflow=workflow,
        user_id=user_id,
        payload=payload,
        run_id=uuid.UUID(run_id),
    )
    return {"run_id": run_id, "status": "succeeded"}


# --- schedules: each enqueues the period's jobs, once -----------------------------------------


async def schedule_weekly_quests(host: JobHost, user_id: str | None = None) -> list[str]:
    week = iso_week(host.clock().date())
    users = [{"id": user_id}] if user_id else await host.services.maintenance.users_with_active_goals()
    ids = [job_id("weekly_quests", u["id"], week) for u in users]
    for u, jid in zip(users, ids, strict=True):
        await host.queue.enqueue("weekly_quests", str(u["id"]), week, job_id=jid)
    return ids


async def schedule_nightly_maintenance(host: JobHost, user_id: str | None = None) -> list[str]:
    day = host.clock().date().isoformat()
    jid = job_id("nightly_maintenance", day)
    await host.queue.enqueue("nightly_maintenance", day, job_id=jid)
    return [jid]


async def schedule_nudge_sweep(host: JobHost, user_id: str | None = None) -> list[str]:
    hour = host.clock().strftime("%Y-%m-%dT%H")
    jid = job_id("nudge_sweep", hour)
    await host.queue.enqueue("nudge_sweep", hour, job_id=jid)
    return [jid]


JOBS: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "weekly_quests": weekly_quests,
    "nightly_maintenance": nightly_maintenance,
    "nudge_sweep": nudge_sweep,
    "run_workflow": run_workflow,
}
SCHEDULES: dict[str, Callable[..., Awaitable[list[str]]]] = {
    "weekly_quests": schedule_weekly_quests,
    "nightly_maintenance": schedule_nightly_maintenance,
    "nudge_sweep": schedule_nudge_sweep,
}
