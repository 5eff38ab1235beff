"""Real worker processes on the real Redis: two workers share the queue; one is SIGKILLed
mid-job; after a restart every job completes, once, with no duplicate missions or notices."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from core.settings import ROOT
from domain.calendar import iso_week
from jobs.queue import ArqQueue, job_key
from jobs.tasks import job_id

REDIS = "redis://127.0.0.1:6379"
USERS = 6
JOB_TIMEOUT_S = 4  # after a SIGKILL, ARQ re-runs the job once its in-progress key expires (timeout + 10 s)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.worker"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def test_killed_worker_job_completes_once_after_restart(pg_url, settings, services) -> None:
    queue_name = f"test:kill:{uuid.uuid4().hex[:8]}"
    week = iso_week(dt.date.today())
    users = []
    for i in range(USERS):
        user = await services.users.ensure(f"worker-{uuid.uuid4().hex[:8]}")
        await services.goals.create(
            user.id,
            goal_id=uuid.uuid4(),
            title=f"Goal {i}",
            description="",
            value_category="growth",
            target_date=None,
            emotional_driver=None,
        )
        users.append(str(user.id))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTEST"))}
    env.update(
        DATABASE_URL=pg_url,
        REDIS_URL=REDIS,
        JOB_QUEUE=queue_name,
        JOB_TIMEOUT_S=str(JOB_TIMEOUT_S),
        JOB_CONCURRENCY="2",
        RUN_LEASE_S="2",  # the killed worker's runs are taken over (and resumed) within seconds
        SIM_LLM_FIRST_TOKEN_MS="1500",
        NUDGE_SWEEP_MINUTE=str((dt.datetime.now(dt.UTC).minute + 30) % 60),  # no cron during the test
    )
    logs = Path(tempfile.mkdtemp(prefix="delight-workers-"))
    queue = await ArqQueue.connect(settings.model_copy(update={"redis_url": REDIS, "job_queue": queue_name}))
    workers = [start_worker(env, logs / "a.log"), start_worker(env, logs / "b.log")]
    try:
        ids = [job_id("weekly_quests", u, week) for u in users]
        for u, jid in zip(users, ids, strict=True):
            assert await queue.enqueue("weekly_quests", u, week, job_id=jid)

        # Kill worker A while it holds a job (its LLM call takes 1.5 s).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if await queue.pool.exists(*(f"arq:in-progress:{job_key(queue_name, jid)}" for jid in ids)):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        workers.append(start_worker(env, logs / "c.log"))  # the restart

        deadline = time.monotonic() + 90
        statuses: list[dict] = []
        while time.monotonic() < deadline:
            statuses = [await queue.status(jid) for jid in ids]
            if all(s["status"] == "complete" for s in statuses):
                break
            await asyncio.sleep(0.5)
        assert all(s["status"] == "complete" and s["success"] for s in statuses), [
            (s["status"], s.get("tries"), str(s.get("result"))[:200]) for s in statuses
        ]
        for u in users:
            quests = await services.db.fetch(
                "SELECT id FROM missions WHERE user_id = %s AND kind = 'quest'", (uuid.UUID(u),)
            )
            notes = await services.db.fetch(
                "SELECT id FROM notifications WHERE user_id = %s AND kind = 'weekly_quests'", (uuid.UUID(u),)
            )
            assert len(quests) == 1 and len(notes) == 1, u  # once each, despite the kill
        assert max(s["tries"] for s in statuses) >= 2  # the killed job ran again after the restart
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(15)
            except subprocess.TimeoutExpired:
                w.kill()
        await queue.close()
