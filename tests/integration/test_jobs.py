"""Background jobs against the real Redis and the embedded Postgres: enqueue → ARQ worker
(burst) → effects in Postgres; dedupe by job id; transient failures retried with backoff;
timeouts retried then failed; task isolation; the in-process scheduler path."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
import redis.asyncio as aioredis
from arq.worker import Worker

from domain.calendar import iso_week
from jobs.queue import ArqQueue, InProcessQueue
from jobs.scheduler import InProcessScheduler, next_runs
from jobs.tasks import JobHost, job_id, schedule_nightly_maintenance, schedule_weekly_quests
from jobs.worker import shutdown, startup, worker_settings
from services.llm.gateway import ModelGateway
from services.maintenance import Maintenance
from tests.support.engine import engine_for

REDIS = "redis://127.0.0.1:6379"


@pytest.fixture(scope="session", autouse=True)
async def redis_is_up() -> None:
    """CI fails, not skips, when Redis is down: these tests are the point of the job layer."""
    client = aioredis.from_url(REDIS)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


@pytest.fixture
async def services(own_services):
    """A database of each test's own: no other engine of the session claims these jobs' runs
    (a run a job retries is pending for a moment, and any process serving its queue may take it)."""
    return own_services


@pytest.fixture
async def env(settings, services) -> AsyncIterator[dict[str, Any]]:
    s = settings.model_copy(
        update={"redis_url": REDIS, "job_queue": f"test:{uuid.uuid4().hex[:8]}", "job_retry_base_s": 0.2}
    )
    queue = await ArqQueue.connect(s)
    svc = dataclasses.replace(services, settings=s)
    try:
        yield {"settings": s, "queue": queue, "services": svc}
    finally:
        await queue.close()


async def burst(env: dict[str, Any], **overrides: Any) -> Worker:
    opts = worker_settings(
        env["settings"],
        burst=True,
        handle_signals=False,
        poll_delay=0.05,
        ctx={"settings": env["settings"], "services": env["services"]},
        **overrides,
    )
    worker = Worker(**opts)
    try:
        await worker.main()
    finally:
        await worker.close()
    return worker


async def user_with_goal(services, title: str = "Write a novel") -> uuid.UUID:
    user = await services.users.ensure(f"jobs-{uuid.uuid4().hex[:8]}")
    await services.goals.create(
        user.id,
        goal_id=uuid.uuid4(),
        title=title,
        description="",
        value_category="craft",
        target_date=None,
        emotional_driver=None,
    )
    return user.id


async def count(services, sql: str, *args: object) -> int:
    return (await services.db.fetchrow(f"SELECT count(*) AS n FROM ({sql}) q", args))["n"]


async def test_weekly_quests_enqueued_twice_run_once_on_a_worker(env, services, engine) -> None:
    user = await user_with_goal(services)
    host = JobHost(env["services"], engine, env["queue"])
    [jid] = await schedule_weekly_quests(host, str(user))
    assert jid == job_id("weekly_quests", user, iso_week(dt.date.today()))
    assert (
        await env["queue"].enqueue("weekly_quests", str(user), iso_week(dt.date.today()), job_id=jid) is False
    )
    assert await env["queue"].pool.zcard(env["settings"].job_queue) == 1

    await burst(env)

    status = await env["queue"].status(jid)
    assert status["status"] == "complete" and status["success"] is True and status["tries"] == 1
    quests = await count(services, "SELECT 1 FROM missions WHERE user_id = %s AND kind = 'quest'", user)
    assert quests == len(status["result"]["missions"]) >= 1
    assert (
        await count(
            services, "SELECT 1 FROM notifications WHERE user_id = %s AND kind = 'weekly_quests'", user
        )
        == 1
    )


class FlakyGateway(ModelGateway):
    def __init__(self, inner: ModelGateway, fail_times: int, sleep_s: float = 0.0) -> None:
        super().__init__(inner.settings, inner.models, kind=inner.kind, sink=inner.sink)
        self.fail_times, self.sleep_s = fail_times, sleep_s
        self.calls: list[float] = []

    async def structured(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(time.monotonic())
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        if len(self.calls) <= self.fail_times:
            raise openai.APIConnectionError(request=__import__("httpx").Request("POST", "http://model"))
        return await super().structured(*args, **kwargs)


async def test_transient_failure_is_retried_with_backoff_and_resumes(env, services, engine) -> None:
    user = await user_with_goal(services)
    flaky = FlakyGateway(services.llm, fail_times=1)
    env["services"] = dataclasses.replace(env["services"], llm=flaky)
    host = JobHost(env["services"], engine, env["queue"])
    [jid] = await schedule_weekly_quests(host, str(user))

    await burst(env)

    status = await env["queue"].status(jid)
    assert status["success"] is True and status["tries"] == 2
    assert len(flaky.calls) == 2 and flaky.calls[1] - flaky.calls[0] >= 0.2  # deferred by the backoff
    assert await count(services, "SELECT 1 FROM missions WHERE user_id = %s AND kind = 'quest'", user) == len(
        status["result"]["missions"]
    )


async def test_a_timeout_is_retried_then_fails_visibly(env, services, engine) -> None:
    user = await user_with_goal(services)
    env["settings"] = env["settings"].model_copy(update={"job_timeout_s": 1.0, "job_max_tries": 2})
    slow = FlakyGateway(services.llm, fail_times=0, sleep_s=3.0)
    env["services"] = dataclasses.replace(env["services"], llm=slow, settings=env["settings"])
    host = JobHost(env["services"], engine, env["queue"])
    [jid] = await schedule_weekly_quests(host, str(user))

    await burst(env)

    status = await env["queue"].status(jid)
    assert status["success"] is False and status["tries"] == 2
    assert status["result"].startswith("weekly_quests failed after 2 tries: RunFailed(")
    assert "ended timeout" in status["result"]
    assert len(slow.calls) == 2  # the retry resumed the run: the timed-out step ran again


async def test_nightly_maintenance_isolates_a_failing_task(env, services, engine) -> None:
    class BrokenMaintenance(Maintenance):
        async def consolidate_week(self, *args: Any) -> int:
            raise RuntimeError("roll-up table is locked")

    env["services"] = dataclasses.replace(env["services"], maintenance=BrokenMaintenance(services.db))
    user = await user_with_goal(services)
    now = dt.datetime.now(dt.UTC)
    expired = await services.memory.add(user, "task", "an old session note", now=now - dt.timedelta(days=40))
    host = JobHost(env["services"], engine, env["queue"])
    [jid] = await schedule_nightly_maintenance(host)

    await burst(env)

    result = (await env["queue"].status(jid))["result"]
    assert result["failed"] == ["consolidate_progress"]
    assert result["results"]["prune_task_memories"]["ok"] and result["results"]["update_dci"]["ok"]
    assert result["results"]["check_hidden_quests"]["ok"]
    assert await count(services, "SELECT 1 FROM memories WHERE id = %s", uuid.UUID(expired[0])) == 0
    assert await count(services, "SELECT 1 FROM dci_daily WHERE user_id = %s", user) == 1


async def test_in_process_scheduler_runs_the_jobs_without_redis(settings, services) -> None:
    s = settings.model_copy(update={"redis_url": None})
    svc = dataclasses.replace(services, settings=s)
    queue = InProcessQueue(s)
    user = await user_with_goal(services, "Learn Portuguese")
    monday_3am = dt.datetime(2031, 3, 3, 3, 0, tzinfo=dt.UTC)  # a Monday: weekly quests are due
    async with engine_for(svc) as engine:
        host = JobHost(svc, engine, queue, clock=lambda: monday_3am)
        queue.host = host
        scheduler = InProcessScheduler(host, s, clock=lambda: monday_3am)

        due = next_runs(s, monday_3am - dt.timedelta(minutes=1))
        assert due["weekly_quests"] == monday_3am and due["nightly_maintenance"] > monday_3am
        after = await scheduler.tick(monday_3am, due)
        await queue.drain()

        jid = job_id("weekly_quests", user, "2031-W10")
        assert (await queue.status(jid))["status"] == "complete"
        assert (
            await count(services, "SELECT 1 FROM missions WHERE user_id = %s AND kind = 'quest'", user) >= 1
        )
        assert after["weekly_quests"] == monday_3am + dt.timedelta(days=7)
        # The same schedule firing again in the same period enqueues nothing new.
        await scheduler.tick(monday_3am, {"weekly_quests": monday_3am})
        assert list(queue.jobs).count(jid) == 1


async def test_jobs_api_is_admin_only(client) -> None:
    user = {"Authorization": "Bearer dev:not-an-admin"}
    admin = {"Authorization": "Bearer dev:admin"}
    assert (await client.post("/api/v1/jobs/nightly_maintenance", headers=user)).status_code == 403
    assert (await client.post("/api/v1/jobs/launch_rockets", headers=admin)).status_code == 422
    assert (
        await client.post("/api/v1/jobs/weekly_quests", json={"user_id": "x"}, headers=admin)
    ).status_code == 422
    r = await client.post("/api/v1/jobs/weekly_quests", json={"user_id": str(uuid.uuid4())}, headers=admin)
    assert r.status_code == 404 and r.json()["detail"] == "user not found"
    r = await client.post("/api/v1/jobs/nightly_maintenance", headers=admin)
    assert r.status_code == 202
    [jid] = r.json()["job_ids"]
    assert r.json()["enqueued"] == [jid] and r.json()["existing"] == []
    # The same period again: refused as a duplicate, and the answer says so.
    again = await client.post("/api/v1/jobs/nightly_maintenance", headers=admin)
    assert again.status_code == 200 and again.json() == {"job_ids": [jid], "enqueued": [], "existing": [jid]}
    assert jid.startswith("nightly_maintenance:")
    for _ in range(100):
        status = (await client.get(f"/api/v1/jobs/{jid}", headers=admin)).json()
        if status["status"] in ("complete", "failed"):
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "complete" and status["tries"] == 1
    assert (await client.get("/api/v1/jobs/nope", headers=admin)).status_code == 404
    assert (await client.get(f"/api/v1/jobs/{jid}", headers=user)).status_code == 403


async def test_with_redis_background_runs_wait_for_a_worker(env, new_database) -> None:
    """REDIS_URL set: the API runs requests, and leaves background runs (a new goal's
    decomposition) to the worker processes, which claim them from Postgres."""
    import httpx

    from api.app import create_app

    settings = env["settings"].model_copy(update={"database_url": new_database()})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as client:
            headers = {"Authorization": f"Bearer dev:arq-{uuid.uuid4().hex[:6]}"}
            created = (
                await client.post(
                    "/api/v1/goals",
                    json={"title": "Climb Mont Blanc", "value_category": "health"},
                    headers=headers,
                )
            ).json()
            run_id = created["decomposition_run_id"]
            await asyncio.sleep(2.5)  # past the API engine's claim sweep: it does not take it
            assert (await client.get(f"/api/v1/runs/{run_id}", headers=headers)).json()["status"] == "pending"

            ctx: dict[str, Any] = {"settings": settings, "redis": env["queue"].pool}
            await startup(ctx)  # what `make worker` starts: it claims the run
            try:
                record = await ctx["host"].engine.wait(uuid.UUID(run_id))
            finally:
                await shutdown(ctx)
            assert record.status == "success" and record.output["created"] is True
            run = (await client.get(f"/api/v1/runs/{run_id}", headers=headers)).json()
            assert run["status"] == "success" and run["result"]["created"] is True
            goal = (await client.get(f"/api/v1/goals/{created['goal']['id']}", headers=headers)).json()
            assert 3 <= len(goal["milestones"]) <= 7


def test_cron_ticks_of_two_environments_sharing_a_redis_never_collide(settings) -> None:
    """ARQ ids a cron tick `<name>:<time>` in keys that ignore the queue: the names carry it."""
    from jobs.worker import cron_jobs

    a = {c.name for c in cron_jobs(settings.model_copy(update={"job_queue": "env-a"}))}
    b = {c.name for c in cron_jobs(settings.model_copy(update={"job_queue": "env-b"}))}
    assert len(a) == len(b) == 3 and not a & b
    assert all(name.startswith("env-a:cron:") for name in a)
