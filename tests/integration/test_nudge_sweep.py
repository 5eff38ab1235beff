"""The hourly nudge sweep: personalized_nudge for inactive users only, then due nudges sent
through their channel (email to a webhook on 127.0.0.1), marked sent once."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from psycopg.types.json import Jsonb

from jobs.queue import InProcessQueue
from jobs.tasks import JobHost, nudge_sweep
from tests.support.engine import engine_for

NOW = dt.datetime.now(dt.UTC).replace(hour=15, minute=0, second=0, microsecond=0)  # outside quiet hours (UTC)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/email", received
    finally:
        server.shutdown()


async def make_user(services, *, last_active_days: int | None, prefs: dict | None = None) -> uuid.UUID:
    user = await services.users.ensure(f"sweep-{uuid.uuid4().hex[:8]}")
    await services.goals.create(
        user.id,
        goal_id=uuid.uuid4(),
        title="Finish my thesis",
        description="",
        value_category="craft",
        target_date=None,
        emotional_driver=None,
    )
    await services.db.execute(
        "UPDATE users SET created_at = %s, preferences = %s WHERE id = %s",
        (NOW - dt.timedelta(days=30), Jsonb(prefs or {}), user.id),
    )
    if last_active_days is not None:
        await services.db.execute(
            "INSERT INTO progress_events (user_id, kind, minutes, at) VALUES (%s, 'session', 20, %s)",
            (user.id, NOW - dt.timedelta(days=last_active_days)),
        )
    return user.id


async def test_sweep_nudges_inactive_users_and_sends_once(settings, services, webhook) -> None:
    url, received = webhook
    s = settings.model_copy(update={"email_webhook_url": url})
    svc = dataclasses.replace(services, settings=s)
    drifted = await make_user(services, last_active_days=5, prefs={"channels": ["in_app", "email"]})
    active = await make_user(services, last_active_days=1)
    never = await make_user(services, last_active_days=None)
    async with engine_for(svc) as engine:
        host = JobHost(svc, engine, InProcessQueue(s), clock=lambda: NOW)
        try:
            first = await nudge_sweep(host, NOW.strftime("%Y-%m-%dT%H"))
            second = await nudge_sweep(host, NOW.strftime("%Y-%m-%dT%H"))
        finally:
            await host.close()

    assert first["failed"] == {} and first["dispatched"]["failed"] == 0
    nudges = {
        u: await services.db.fetch("SELECT channel, status, message FROM nudges WHERE user_id = %s", (u,))
        for u in (drifted, active, never)
    }
    assert [(n["channel"], n["status"]) for n in nudges[drifted]] == [("email", "sent")]
    assert nudges[active] == [] and nudges[never] == []
    mine = [r for r in received if r["user_id"] == str(drifted)]
    assert (
        len(mine) == 1
        and mine[0]["channel"] == "email"
        and mine[0]["message"] == nudges[drifted][0]["message"]
    )
    events = await services.db.fetch(
        "SELECT 1 FROM progress_events WHERE user_id = %s AND kind = 'nudge_sent'", (drifted,)
    )
    assert len(events) == 1  # the second sweep sent nothing again
    assert second["failed"] == {}


async def test_two_overlapping_sweeps_on_two_workers_send_each_nudge_once(own_services, webhook) -> None:
    """Two workers sweep the same hour at once: each user's personalized_nudge runs once (one
    run on one thread: no forked checkpoint history), and each due nudge is claimed and sent once."""
    url, received = webhook
    s = own_services.settings.model_copy(update={"email_webhook_url": url})
    svc = dataclasses.replace(own_services, settings=s)
    users = [
        await make_user(svc, last_active_days=5, prefs={"channels": ["in_app", "email"]}) for _ in range(12)
    ]
    hour = NOW.strftime("%Y-%m-%dT%H")
    async with engine_for(svc) as one, engine_for(svc) as two:
        hosts = [JobHost(svc, e, InProcessQueue(s), clock=lambda: NOW) for e in (one, two)]
        try:
            results = await asyncio.gather(*(nudge_sweep(h, hour) for h in hosts))
        finally:
            for h in hosts:
                await h.close()

    assert all(r["failed"] == {} for r in results)
    assert sum(r["dispatched"]["sent"] for r in results) == len(users)
    assert sorted(r["user_id"] for r in received) == sorted(str(u) for u in users)  # once each
    for user in users:
        runs = await svc.db.fetch(
            "SELECT thread_id, attempt FROM runs WHERE user_id = %s AND workflow = 'personalized_nudge'",
            (user,),
        )
        assert len(runs) == 1 and runs[0]["attempt"] == 1
        checkpoints = await svc.db.fetch(
            "SELECT checkpoint_id, parent_checkpoint_id FROM checkpoints WHERE thread_id = %s",
            (runs[0]["thread_id"],),
        )
        parents = [c["parent_checkpoint_id"] for c in checkpoints]
        assert len(set(parents)) == len(parents)  # no checkpoint has two children: no fork
        sent = await svc.db.fetch(
            "SELECT 1 FROM progress_events WHERE user_id = %s AND kind = 'nudge_sent'", (user,)
        )
        assert len(sent) == 1
