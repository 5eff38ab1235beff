"""weekly_insights end to end on the embedded Postgres, with the offline model: a seeded week of
history (missions, progress events across local days, task memories), the highlight reel for a
7-day streak and none for a sparse week, idempotent re-runs (no model call, same row, same
memory), and the InsightStore's owner-scoped reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import week_of
from domain.ids import stable_id
from graphs.registry import Graph
from graphs.weekly_insights import build
from nodes.context import Context

NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)  # Thursday 19:00 in Paris, 2026-W48
TZ = "Europe/Paris"
WEEK = "2026-W48"
LOCAL = ZoneInfo(TZ)


async def new_user(services: Any, tz: str = TZ) -> uuid.UUID:
    user = (await services.users.ensure(f"insights-{uuid.uuid4().hex[:10]}")).id
    await services.db.execute("UPDATE users SET timezone = %s WHERE id = %s", (tz, user))
    return user


async def mission(services: Any, user: uuid.UUID, title: str) -> uuid.UUID:
    mid = uuid.uuid4()
    await services.db.execute(
        """INSERT INTO missions (id, user_id, title, estimated_minutes, energy_level, status)
           VALUES (%s, %s, %s, 25, 'medium', 'completed')""",
        (mid, user, title),
    )
    return mid


async def event(
    services: Any,
    user: uuid.UUID,
    kind: str,
    at: datetime,
    minutes: int | None = None,
    mission_id: Any = None,
) -> None:
    await services.db.execute(
        "INSERT INTO progress_events (user_id, kind, mission_id, minutes, at) VALUES (%s, %s, %s, %s, %s)",
        (user, kind, mission_id, minutes, at),
    )


def local(day: int, hour: int) -> datetime:
    """A Paris wall-clock time in November 2026."""
    return datetime(2026, 11, day, hour, 0, tzinfo=LOCAL)


async def run(services: Any, user: uuid.UUID, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    graph: Graph = build(services.settings).compile()
    ctx = Context(user_id=user, thread_id=f"t-{uuid.uuid4()}", timezone=TZ, now=NOW, services=services)
    return await graph.ainvoke(inputs or {}, context=ctx)


async def llm_calls(services: Any, user: uuid.UUID) -> list[str]:
    rows = await services.db.fetch("SELECT site FROM llm_usage WHERE user_id = %s ORDER BY id", (user,))
    return [r["site"] for r in rows]


async def personal_memories(services: Any, user: uuid.UUID) -> list[dict[str, Any]]:
    return await services.db.fetch(
        "SELECT id, content, metadata FROM memories WHERE user_id = %s AND tier = 'personal'", (user,)
    )


@pytest.fixture
async def streak_user(services: Any) -> uuid.UUID:
    """Seven local days in a row (Fri 20 .. Thu 26), one completion a day, two on Wednesday 25
    (one at 00:30 local, still Tuesday 23:30 in UTC), plus a skip and task notes."""
    user = await new_user(services)
    write = await mission(services, user, "Write 300 words")
    walk = await mission(services, user, "Evening walk")
    for day in range(20, 27):
        await event(services, user, "mission_completed", local(day, 10), 25, write)
    await event(services, user, "mission_completed", datetime(2026, 11, 25, 0, 30, tzinfo=LOCAL), 30, walk)
    await event(services, user, "mission_skipped", local(24, 15))
    await event(services, user, "session", local(23, 20), 45)
    # Outside the window (more than 7 days before NOW) and someone else's: neither counts.
    await event(services, user, "mission_completed", local(18, 10), 25, write)
    other = await new_user(services)
    await event(services, other, "mission_completed", local(24, 9), 25)
    for day, note in (
        (21, "Drafted the opening scene of chapter one"),
        (23, "Researched literary agents who accept fantasy novels"),
        (25, "Felt tired after the evening walk but finished it anyway"),
    ):
        await services.memory.add(user, "task", note, now=local(day, 12))
    await services.memory.add(user, "task", "Old note from last month", now=NOW - timedelta(days=12))
    await services.memory.add(other, "task", "Someone else's drafted chapter", now=local(24, 12))
    return user


async def test_a_week_with_a_seven_day_streak_gets_a_highlight_reel(
    services: Any, streak_user: uuid.UUID
) -> None:
    user = streak_user
    out = await run(services, user)

    assert out["created"] is True and out["degraded"] == []
    insight = out["insight"]
    assert insight["week"] == WEEK == week_of(NOW, TZ)
    assert insight["id"] == str(stable_id(user, WEEK))
    stats = insight["stats"]
    assert stats["streak_days"] == 7
    assert stats["completed"] == 8 and stats["skipped"] == 1
    assert stats["minutes"] == 7 * 25 + 30 + 45
    assert stats["by_weekday"] == {"Mon": 1, "Tue": 1, "Wed": 2, "Thu": 1, "Fri": 1, "Sat": 1, "Sun": 1}
    assert stats["best_weekday"] == "Wed"
    assert stats["top_missions"] == [
        {"title": "Write 300 words", "count": 7},
        {"title": "Evening walk", "count": 1},
    ]
    assert stats["task_memories"] == 3  # the old note and the other user's are not read
    progress = await services.progress.recent(user, TZ, NOW)
    assert insight["dci"] == progress.dci < 0.8  # the reel is earned by the streak alone

    reel = insight["highlight_reel"]
    assert reel is not None and reel["reasons"] == ["streak"]
    assert reel["streak_days"] == 7 and reel["best_weekday"] == "Wed"
    assert reel["top_missions"][0] == {"title": "Write 300 words", "count": 7}

    row = await services.db.fetchrow("SELECT * FROM insights WHERE user_id = %s AND week = %s", (user, WEEK))
    assert str(row["id"]) == insight["id"] and row["text"] == insight["text"]
    assert row["highlight_reel"] == reel and row["stats"] == stats

    # The model saw the task notes (the patterns call) and both cheap calls were accounted.
    assert await llm_calls(services, user) == ["insights.patterns", "insights.write"]
    assert "Wednesday" in insight["text"]

    (memory,) = await personal_memories(services, user)
    assert memory["id"] == stable_id(user, WEEK, "weekly_insight_memory")
    assert memory["content"].startswith(f"Weekly Insight ({WEEK}, DCI {insight['dci']:.2f}): ")
    assert memory["metadata"]["week"] == WEEK and memory["metadata"]["dci"] == insight["dci"]
    assert memory["metadata"]["tags"] == ["insight", "weekly_summary", "analytics"]


async def test_rerun_is_idempotent_and_calls_no_model(services: Any, streak_user: uuid.UUID) -> None:
    user = streak_user
    first = await run(services, user, {"week": WEEK})
    calls = await llm_calls(services, user)
    memories = await personal_memories(services, user)

    second = await run(services, user, {"week": WEEK})

    assert second["created"] is False
    assert second["insight"] == first["insight"]
    assert second["usage"]["calls"] == 0
    assert await llm_calls(services, user) == calls  # no model call
    assert await personal_memories(services, user) == memories  # same single memory, untouched
    n = await services.db.fetchrow("SELECT count(*) AS n FROM insights WHERE user_id = %s", (user,))
    assert n["n"] == 1


async def test_a_sparse_week_gets_no_reel(services: Any) -> None:
    user = await new_user(services)
    m = await mission(services, user, "Stretch")
    await event(services, user, "mission_completed", local(22, 9), 15, m)
    await event(services, user, "mission_completed", local(24, 9), 15, m)
    await event(services, user, "mission_skipped", local(25, 9))

    out = await run(services, user)

    insight = out["insight"]
    assert out["created"] is True
    assert insight["stats"]["streak_days"] == 0 and insight["dci"] < 0.8
    assert (
        insight["stats"]["completed"] == 2 and insight["stats"]["best_weekday"] == "Tue"
    )  # tie: earliest in the week
    assert insight["highlight_reel"] is None
    row = await services.db.fetchrow(
        "SELECT highlight_reel FROM insights WHERE id = %s", (uuid.UUID(insight["id"]),)
    )
    assert row["highlight_reel"] is None
    assert len(await personal_memories(services, user)) == 1


async def test_an_empty_past_week_still_gets_an_insight(services: Any) -> None:
    user = await new_user(services)
    out = await run(services, user, {"week": "2026-W40"})
    assert out["created"] is True and out["insight"]["week"] == "2026-W40"
    assert out["insight"]["stats"]["completed"] == 0 and out["insight"]["highlight_reel"] is None
    assert out["insight"]["stats"]["window"] == {
        "start": "2026-09-28T00:00:00+02:00",
        "end": "2026-10-05T00:00:00+02:00",
    }


async def test_store_list_and_get_are_owner_scoped(services: Any) -> None:
    user, other = await new_user(services), await new_user(services)
    for week in ("2026-W45", "2026-W47", "2026-W46"):
        await run(services, user, {"week": week})
    listed = await services.insights.list(user, limit=10)
    assert [i["week"] for i in listed] == ["2026-W47", "2026-W46", "2026-W45"]
    assert [i["week"] for i in await services.insights.list(user, limit=2)] == ["2026-W47", "2026-W46"]
    assert set(listed[0]) == {"id", "week", "text", "dci", "stats", "highlight_reel", "created_at"}
    assert await services.insights.list(other, limit=10) == []
    assert await services.insights.get(other, "2026-W47") is None
    assert (await services.insights.get(user, "2026-W47"))["id"] == str(stable_id(user, "2026-W47"))


async def test_store_keeps_a_complete_row_and_replaces_a_degraded_one(services: Any) -> None:
    user = await new_user(services)
    iid = stable_id(user, "2026-W30")
    row, written = await services.insights.store(
        user, insight_id=iid, week="2026-W30", text="first", dci=0.1, stats={"degraded": ["compute_dci"]}
    )
    assert written and row["text"] == "first"
    await services.insights.set_highlight_reel(user, "2026-W30", {"x": 1})
    row, written = await services.insights.store(
        user, insight_id=iid, week="2026-W30", text="second", dci=0.5, stats={"degraded": []}
    )
    assert written and row["text"] == "second" and row["highlight_reel"] is None and row["id"] == str(iid)
    row, written = await services.insights.store(
        user, insight_id=iid, week="2026-W30", text="third", dci=0.9, stats={"degraded": []}
    )
    assert not written and row["text"] == "second" and row["dci"] == 0.5
