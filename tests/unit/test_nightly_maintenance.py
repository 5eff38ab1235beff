"""The nightly_maintenance graph's logic (seed: "Parallel Background Jobs"), run for real by
LangGraph over in-memory stores: the four tasks run, a failing one is recorded and the others
still finish, per-user work is isolated per user. A system run: its context has no user. No
Postgres, no network (tests/integration/test_jobs.py runs it as a job)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from graphs.nightly_maintenance import GRAPH, TASKS, build
from nodes.context import RunContext
from state.schemas import Progress
from tests.support.fakes import FakeServices, ScriptedChatModel, fake_services

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
Svc = FakeServices[ScriptedChatModel]


async def run(svc: Svc) -> dict[str, Any]:
    graph = build(svc.settings).compile(name=GRAPH)
    ctx = RunContext(thread_id=f"job:{GRAPH}:{NOW.date()}", now=NOW, services=svc)
    return await graph.ainvoke({"day": NOW.date().isoformat()}, context=ctx)


def users(svc: Svc, n: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    svc.maintenance.user_rows = [{"id": u, "timezone": "UTC"} for u in ids]
    return ids


async def test_every_task_runs_and_reports() -> None:
    svc = fake_services(progress=Progress(streak_days=7, dci=0.7, zone="green"))
    svc.maintenance.pruned = 4
    svc.maintenance.stats = {"missions_completed": 10, "goals_completed": 0, "unlocked": ["missions_10"]}
    a, b = users(svc, 2)

    out = await run(svc)

    results = out["results"]
    assert set(results) == {t.__name__ for t in TASKS}
    assert all(r["ok"] for r in results.values()) and out["failed"] == []
    assert results["prune_task_memories"]["pruned"] == 4
    assert results["consolidate_progress"]["week"] == "2026-W48"
    assert set(svc.maintenance.dci) == {(a, date(2026, 11, 26)), (b, date(2026, 11, 26))}
    # missions_10 was already unlocked; the 7-day streak unlocks streak_7 for both users.
    assert results["check_hidden_quests"]["unlocked"] == {str(a): ["streak_7"], str(b): ["streak_7"]}


async def test_a_failing_task_is_recorded_and_the_others_finish() -> None:
    svc = fake_services()
    users(svc, 1)
    svc.maintenance.fail(RuntimeError("roll-up table is locked"), op="consolidate_week")

    out = await run(svc)

    assert out["results"]["consolidate_progress"] == {"ok": False}
    assert out["failed"] == ["consolidate_progress"]
    assert all(out["results"][t]["ok"] for t in ("prune_task_memories", "update_dci", "check_hidden_quests"))


async def test_one_users_failure_does_not_stop_the_others() -> None:
    svc = fake_services()
    a, b = users(svc, 2)
    svc.maintenance.fail(RuntimeError("disk full"), op="store_dci", when=lambda args: args["user_id"] == a)

    out = await run(svc)

    dci = out["results"]["update_dci"]
    assert dci["ok"] is False and set(dci["failed"]) == {str(a)} and dci["users"] == 2
    assert (b, date(2026, 11, 26)) in svc.maintenance.dci
    assert out["failed"] == ["update_dci"]
