"""The ARQ worker: `make worker` (or `python -m jobs.worker`). Several can run against one Redis
and one Postgres; cron schedules enqueue each period's jobs once (deterministic job ids)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from arq import Retry, cron
from arq.worker import Function, func, run_worker

from core.logging import configure_logging, get_logger
from core.settings import WEEKDAYS, Settings, get_settings, load_settings, parse_hhmm
from engine import Engine
from graphs.registry import compile_all
from jobs.queue import ArqQueue, backoff_s, deserialize, job_key, redis_settings, serialize
from jobs.tasks import JOBS, SCHEDULES, JobHost, inner_timeout, transient
from services.container import Services

log = get_logger("delight.worker")


class JobFailed(RuntimeError):
    """A job's final failure, with the tries it took and the last error."""


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or get_settings()
    configure_logging(settings.log_level)
    services = ctx.get("services") or await Services.open(settings)
    # The worker serves the background queue: jobs' runs, and runs the API queued (e.g. a goal's
    # decomposition), claimed from Postgres; ARQ brings the schedules and the jobs' retries.
    engine = Engine(services, compile_all(settings, services.checkpointer), queues=("worker",))
    await engine.start()
    ctx["host"] = JobHost(services, engine, ArqQueue(ctx["redis"]))
    ctx["owns_services"] = "services" not in ctx
    ctx["services"] = services
    log.info("worker ready", extra={"model": services.llm.kind, "database": services.db.kind})


async def shutdown(ctx: dict[str, Any]) -> None:
    if "host" in ctx:
        await ctx["host"].engine.close()
        await ctx["host"].close()
    if ctx.get("owns_services") and "services" in ctx:
        await ctx["services"].close()


def as_arq_job(name: str, settings: Settings) -> Function:
    """Wrap a job for ARQ: transient failures and timeouts become `Retry(defer=...)` with
    exponential backoff while tries remain; the last try's failure is logged and kept as the
    job's result. (ARQ itself only retries on Retry; its own job_timeout fails for good, so our
    timeout fires first, a little earlier.)"""
    body = JOBS[name]

    @functools.wraps(body)
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        job_try = ctx.get("job_try", 1)
        try:
            async with asyncio.timeout(inner_timeout(settings.job_timeout_s)):
                return await body(ctx["host"], *args)
        except Exception as err:
            if transient(err) and job_try < settings.job_max_tries:
                delay = backoff_s(settings, job_try)
                log.warning(
                    "job retrying",
                    extra={
                        "job": name,
                        "job_id": ctx.get("job_id"),
                        "tries": job_try,
                        "defer_s": round(delay, 2),
                        "error": repr(err),
                    },
                )
                raise Retry(defer=delay) from err
            log.error(
                "job failed",
                extra={"job": name, "job_id": ctx.get("job_id"), "tries": job_try, "error": repr(err)},
            )
            # Results are stored as JSON (str of the exception): say plainly what happened.
            raise JobFailed(f"{name} failed after {job_try} tries: {err!r}") from err

    run.__qualname__ = run.__name__ = name
    return func(run, name=name, timeout=settings.job_timeout_s, max_tries=settings.job_max_tries)


def schedule_job(name: str) -> Any:
    async def run(ctx: dict[str, Any]) -> list[str]:
        return list(await SCHEDULES[name](ctx["host"]))

    run.__qualname__ = run.__name__ = f"schedule_{name}"
    return run


def cron_jobs(settings: Settings) -> list[Any]:
    def cron_name(job: str) -> str:
        # ARQ ids a tick `<name>:<time>` in keys that ignore the queue: the name carries it, so
        # environments sharing a Redis each get their tick.
        return job_key(settings.job_queue, f"cron:{job}")

    nh, nm = parse_hhmm(settings.nightly_at)
    day, _, at = settings.weekly_at.partition(" ")
    wh, wm = parse_hhmm(at)
    return [
        cron(schedule_job("nightly_maintenance"), name=cron_name("nightly_maintenance"), hour=nh, minute=nm),
        cron(
            schedule_job("weekly_quests"),
            name=cron_name("weekly_quests"),
            weekday=WEEKDAYS.index(day.lower()),
            hour=wh,
            minute=wm,
        ),
        cron(schedule_job("nudge_sweep"), name=cron_name("nudge_sweep"), minute=settings.nudge_sweep_minute),
    ]


def worker_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {
        "functions": [as_arq_job(name, settings) for name in JOBS],
        "cron_jobs": cron_jobs(settings),
        "redis_settings": redis_settings(settings),
        "queue_name": settings.job_queue,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "max_tries": settings.job_max_tries,
        "job_timeout": settings.job_timeout_s,
        "max_jobs": settings.job_concurrency,
        "keep_result": 3600,
        "ctx": {"settings": settings},
        **overrides,
    }


def main() -> None:
    settings = load_settings()
    run_worker(worker_settings(settings))


if __name__ == "__main__":
    main()
