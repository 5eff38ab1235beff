"""Two environments (two JOB_QUEUE names) on one real Redis: the same deterministic job id is a
separate job in each, and one environment's result never shows as the other's. ARQ's own keys
ignore the queue name, so `ArqQueue` namespaces the ids itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.connections import RedisSettings
from arq.worker import Worker, func

from core.settings import Settings
from jobs.queue import ArqQueue, deserialize, job_key, serialize

REDIS = "redis://127.0.0.1:6379"


@pytest.fixture
async def queues() -> AsyncIterator[tuple[ArqQueue, ArqQueue]]:
    run = uuid.uuid4().hex[:8]
    a = await ArqQueue.connect(Settings(redis_url=REDIS, job_queue=f"test:staging:{run}"))
    b = await ArqQueue.connect(Settings(redis_url=REDIS, job_queue=f"test:production:{run}"))
    try:
        yield a, b
    finally:
        for q in (a, b):
            keys = [k async for k in q.pool.scan_iter(match=f"arq:*:{q.queue_name}:*")]
            if keys:
                await q.pool.delete(*keys)
            await q.pool.delete(q.queue_name)
            await q.close()


async def run_burst(queue: ArqQueue, label: str) -> None:
    """A real ARQ worker on `queue`, with a stand-in job body that says which environment ran."""

    async def nightly_maintenance(ctx: dict[str, Any], day: str) -> dict[str, str]:
        return {"env": label, "day": day, "arq_job_id": ctx["job_id"]}

    worker = Worker(
        functions=[func(nightly_maintenance, name="nightly_maintenance")],
        redis_settings=RedisSettings.from_dsn(REDIS),
        queue_name=queue.queue_name,
        burst=True,
        handle_signals=False,
        poll_delay=0.05,
        job_serializer=serialize,
        job_deserializer=deserialize,
    )
    try:
        await worker.main()
    finally:
        await worker.close()


async def test_same_job_id_in_two_environments_is_two_jobs(queues: tuple[ArqQueue, ArqQueue]) -> None:
    staging, production = queues
    jid = "nightly_maintenance:2031-01-01"

    assert await staging.enqueue("nightly_maintenance", "2031-01-01", job_id=jid) is True
    # The other environment's job with the same id is not a duplicate of this one.
    assert await production.enqueue("nightly_maintenance", "2031-01-01", job_id=jid) is True
    # Within one environment the id still deduplicates.
    assert await staging.enqueue("nightly_maintenance", "2031-01-01", job_id=jid) is False

    await run_burst(staging, "staging")

    done = await staging.status(jid)
    assert done["job_id"] == jid and done["status"] == "complete" and done["success"] is True
    assert done["result"] == {
        "env": "staging",
        "day": "2031-01-01",
        "arq_job_id": job_key(staging.queue_name, jid),
    }
    # Production still sees its own job, waiting for its own worker: not staging's result.
    waiting = await production.status(jid)
    assert waiting["job_id"] == jid and waiting["status"] == "queued" and "result" not in waiting

    await run_burst(production, "production")
    assert (await production.status(jid))["result"]["env"] == "production"
    assert (await staging.status(jid))["result"]["env"] == "staging"
    assert (await staging.status("nightly_maintenance:2031-01-02"))["status"] == "not_found"
