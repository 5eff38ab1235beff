"""The background jobs, as plain async functions of a `JobHost`, shared by the ARQ worker and the
in-process scheduler. A job is an adapter over the run engine: each graph it runs is a run whose
id and thread derive from the job's key (job, user, period), so a job enqueued twice, retried,
re-run by an overlapping schedule or resumed after a crash joins or resumes that one run and never
starts a second; the runs' writes are keyed as well."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
import openai
from langgraph.errors import NodeTimeoutError

from core.errors import DelightError
from core.logging import get_logger
from domain.calendar import iso_week
from domain.ids import stable_id
from domain.nudges import MIN_DAYS_INACTIVE
from engine import Engine, RunRequest
from nodes.kit import bounded_map
from services.container import Services
from services.db import TRANSIENT_DB_ERRORS
from services.llm.retry import is_transient
from services.runs import RunRecord, thread_for
from services.senders import Sender, build_senders
from state.nudges import Nudge

log = get_logger("delight.jobs")


class Queue(Protocol):
    async def enqueue(self, name: str, *args: Any, job_id: str) -> bool:
        """Enqueue `name(*args)` once per `job_id`; False when that job already exists."""
        ...


@dataclass
class JobHost:
    services: Services
    engine: Engine
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


class RunFailed(DelightError):
    """A job's run ended without success; `transient` when trying again may help."""

    def __init__(self, record: RunRecord) -> None:
        super().__init__(f"{record.workflow} run {record.id} ended {record.status}: {record.error}")
        self.record = record
        self.transient = record.status == "timeout" or record.error_type in ("Unavailable", "Timeout")


def transient(err: BaseException) -> bool:
    """Worth another try: infrastructure hiccups, model rate limits and timeouts."""
    if isinstance(err, RunFailed):
        return err.transient
    return isinstance(err, (*TRANSIENT_DB_ERRORS, TimeoutError, NodeTimeoutError)) or (
        isinstance(err, openai.OpenAIError) and is_transient(err)
    )


def inner_timeout(job_timeout_s: float) -> float:
    """Our timeout fires before ARQ's (which fails a job for good), leaving time to decide."""
    return job_timeout_s - min(10.0, job_timeout_s * 0.2)


def job_id(name: str, *parts: object) -> str:
    return ":".join([name, *(str(p) for p in parts)])


async def run_job(
    host: JobHost,
    workflow: str,
    key: tuple[object, ...],
    inputs: dict[str, Any],
    *,
    user: uuid.UUID | None = None,
    timezone: str = "UTC",
) -> dict[str, Any]:
    """The one run of `workflow` for `key`: started here if new, joined if running anywhere,
    resumed from its checkpoint if it failed before (a retry), its output if it succeeded."""
    engine = host.engine
    run_id = stable_id("run", workflow, *key)
    record = await engine.submit(
        RunRequest(
            workflow=workflow,
            input=inputs,
            user=user,
            timezone=timezone,
            thread_id=thread_for(workflow, *key),
            run_id=run_id,
            background=True,
            admit=False,
            now=host.clock(),
            # The run times out before its job does, so the job sees why and retries it: the
            # next try resumes the run from its last finished step.
            timeout_s=inner_timeout(host.services.settings.job_timeout_s) * 0.75,
        )
    )
    if record.status in ("error", "timeout", "interrupted"):
        await engine.retry(run_id)
    if record.status != "success":
        record = await engine.wait(run_id)
    if record.status != "success":
        raise RunFailed(record)
    return record.output or {}


# --- per-item jobs ---------------------------------------------------------------------------


async def weekly_quests(host: JobHost, user_id: str, week: str) -> dict[str, Any]:
    user = uuid.UUID(user_id)
    out = await run_job(
        host,
        "weekly_quests",
        (user_id, week),
        {"week": week},
        user=user,
        timezone=await host.services.users.timezone(user) or "UTC",
    )
    return {**out, "missions": [m["id"] for m in out.get("missions") or []]}


async def nightly_maintenance(host: JobHost, day: str) -> dict[str, Any]:
    out = await run_job(host, "nightly_maintenance", (day,), {"day": day})
    return {k: v for k, v in out.items() if k in ("results", "failed")}


async def nudge_sweep(host: JobHost, hour: str) -> dict[str, Any]:
    """personalized_nudge for every user inactive 2+ days (JOB_CONCURRENCY at a time, each user
    isolated, one run per user and local day: an overlapping sweep joins it), then send every
    due nudge, each claimed before it is sent."""
    svc, now = host.services, host.clock()
    inactive = await svc.maintenance.inactive_users(now, MIN_DAYS_INACTIVE)

    async def plan(user: dict[str, Any]) -> bool:
        day = now.astimezone(ZoneInfo(user["timezone"])).date()
        out = await run_job(
            host, "personalized_nudge", (user["id"], day), {}, user=user["id"], timezone=user["timezone"]
        )
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
    """Send each due nudge through its channel, claimed first (so two sweeps or two workers never
    both send it); mark it sent (with its progress event) or failed."""
    svc = host.services
    senders = host.senders()

    async def send(nudge: Nudge) -> None:
        try:
            await senders[nudge.channel].send(uuid.UUID(nudge.user_id), nudge.model_dump())
        except Exception as err:
            await svc.nudges.mark_failed(uuid.UUID(nudge.id), repr(err))
            raise
        await svc.nudges.mark_sent(uuid.UUID(nudge.id), now)

    outcomes = await bounded_map(await svc.nudges.claim_due(now), send, svc.settings.job_concurrency)
    return {"sent": sum(o.ok for o in outcomes), "failed": sum(not o.ok for o in outcomes)}


# --- schedules: each enqueues the period's jobs, once -----------------------------------------
# Each returns {job id: True if enqueued now, False if that job already existed}.


async def schedule_weekly_quests(host: JobHost, user_id: str | None = None) -> dict[str, bool]:
    week = iso_week(host.clock().date())
    users = [{"id": user_id}] if user_id else await host.services.maintenance.users_with_active_goals()
    return {
        jid: await host.queue.enqueue("weekly_quests", str(u["id"]), week, job_id=jid)
        for u in users
        for jid in [job_id("weekly_quests", u["id"], week)]
    }


async def schedule_nightly_maintenance(host: JobHost, user_id: str | None = None) -> dict[str, bool]:
    day = host.clock().date().isoformat()
    jid = job_id("nightly_maintenance", day)
    return {jid: await host.queue.enqueue("nightly_maintenance", day, job_id=jid)}


async def schedule_nudge_sweep(host: JobHost, user_id: str | None = None) -> dict[str, bool]:
    hour = host.clock().strftime("%Y-%m-%dT%H")
    jid = job_id("nudge_sweep", hour)
    return {jid: await host.queue.enqueue("nudge_sweep", hour, job_id=jid)}


JOBS: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
    "weekly_quests": weekly_quests,
    "nightly_maintenance": nightly_maintenance,
    "nudge_sweep": nudge_sweep,
}
SCHEDULES: dict[str, Callable[..., Awaitable[dict[str, bool]]]] = {
    "weekly_quests": schedule_weekly_quests,
    "nightly_maintenance": schedule_nightly_maintenance,
    "nudge_sweep": schedule_nudge_sweep,
}
