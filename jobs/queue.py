"""Two queues behind one interface: ARQ over Redis (several workers, several API processes), and
an in-process queue for the embedded default (no Redis). Both dedupe by job id, retry
transient failures with exponential backoff, and turn a timeout into a retry, then a failure."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job, JobStatus

from core.logging import get_logger
from core.settings import Settings
from jobs.tasks import JOBS, JobHost, transient

log = get_logger("delight.jobs")


def backoff_s(settings: Settings, job_try: int) -> float:
    """base * 2^(try-1), plus up to 50% jitter so retried jobs do not stampede together."""
    delay = settings.job_retry_base_s * 2 ** max(0, job_try - 1)
    return delay * (1 + random.random() / 2)


# JSON, never pickle: whoever can write to Redis must not be able to run code on a worker.
def serialize(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, default=str).encode()


def deserialize(raw: bytes) -> dict[str, Any]:
    return json.loads(raw)


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url or "redis://127.0.0.1:6379")


class ArqQueue:
    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, settings: Settings) -> ArqQueue:
        pool = await create_pool(
            redis_settings(settings),
            job_serializer=serialize,
            job_deserializer=deserialize,
            default_queue_name=settings.job_queue,
        )
        return cls(pool)

    async def enqueue(self, name: str, *args: Any, job_id: str) -> bool:
        # `_job_id` makes ARQ refuse a second job with the same id while the first (or its
        # result) exists: a job enqueued twice runs once.
        job = await self.pool.enqueue_job(name, *args, _job_id=job_id)
        return job is not None

    async def status(self, job_id: str) -> dict[str, Any]:
        job = Job(job_id, self.pool, _queue_name=self.pool.default_queue_name, _deserializer=deserialize)
        status = await job.status()
        out: dict[str, Any] = {"job_id": job_id, "status": status.value}
        if status == JobStatus.not_found:
            return out
        info = await job.info()
        if info is not None:
            out["function"] = info.function
            out["tries"] = info.job_try
            out["enqueued_at"] = info.enqueue_time.isoformat()
        result = await job.result_info()
        if result is not None:
            out["success"] = result.success
            out["result"] = result.result if result.success else str(result.result)
            out["finished_at"] = result.finish_time.isoformat()
        return out

    async def close(self) -> None:
        await self.pool.aclose()


@dataclass
class LocalJob:
    job_id: str
    function: str
    status: str = "queued"
    tries: int = 0
    result: Any = None
    error: str | None = None
    enqueued_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())


class InProcessQueue:
    """The same jobs on asyncio tasks of this process, at most JOB_CONCURRENCY at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.host: JobHost | None = None
        self.jobs: dict[str, LocalJob] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.gate = asyncio.Semaphore(settings.job_concurrency)

    async def enqueue(self, name: str, *args: Any, job_id: str) -> bool:
        if job_id in self.jobs:
            return False
        job = self.jobs[job_id] = LocalJob(job_id, name)
        task = asyncio.create_task(self._run(job, args))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def _run(self, job: LocalJob, args: tuple[Any, ...]) -> None:
        assert self.host is not None, "InProcessQueue.host must be set before jobs run"
        async with self.gate:
            while True:
                job.tries += 1
                job.status = "in_progress"
                t0 = time.perf_counter()
                try:
                    async with asyncio.timeout(self.settings.job_timeout_s):
                        job.result = await JOBS[job.function](self.host, *args)
                    job.status = "complete"
                    log.info(
                        "job done",
                        extra={
                            "job_id": job.job_id,
                            "tries": job.tries,
                            "ms": round((time.perf_counter() - t0) * 1000, 1),
                        },
                    )
                    return
                except Exception as err:
                    if transient(err) and job.tries < self.settings.job_max_tries:
                        delay = backoff_s(self.settings, job.tries)
                        log.warning(
                            "job retrying",
                            extra={
                                "job_id": job.job_id,
                                "tries": job.tries,
                                "defer_s": round(delay, 2),
                                "error": repr(err),
                            },
                        )
                        job.status = "deferred"
                        await asyncio.sleep(delay)
                        continue
                    job.status, job.error = "failed", repr(err)
                    log.error(
                        "job failed", extra={"job_id": job.job_id, "tries": job.tries, "error": repr(err)}
                    )
                    return

    async def status(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            return {"job_id": job_id, "status": "not_found"}
        return {
            "job_id": job.job_id,
            "function": job.function,
            "status": job.status,
            "tries": job.tries,
            "enqueued_at": job.enqueued_at,
            "result": job.result,
            "error": job.error,
            "success": {"complete": True, "failed": False}.get(job.status),
        }

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
