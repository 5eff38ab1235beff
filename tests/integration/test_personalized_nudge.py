"""personalized_nudge end to end on the embedded Postgres (offline model): last activity from
progress events, chat and missions; the user's stored timezone and preferences; one nudge per
user per local day; the streak cap counted in SQL; the task memory; and the store's methods
for the API and the dispatch job (list, due, mark_sent, mark_failed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from psycopg.types.json import Jsonb

from domain.nudges import shaming_phrase
from graphs.personalized_nudge import build
from nodes.context import Context

pytestmark = pytest.mark.db

NY = "America/New_York"
# 22:30 on 2026-01-14 in New York: inside the default quiet hours (22:00-08:00).
NOW = datetime(2026, 1, 15, 3, 30, tzinfo=UTC)
TOMORROW_8AM_NY = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)


async def make_user(
    services, *, tz: str = NY, prefs: dict[str, Any] | None = None, created: datetime | None = None
) -> uuid.UUID:
    user = (await services.users.ensure(f"nudge-{uuid.uuid4().hex[:10]}")).id
    await services.db.execute(
        "UPDATE users SET timezone = %s, preferences = %s, created_at = %s WHERE id = %s",
        (tz, Jsonb(prefs or {}), created or NOW - timedelta(days=90), user),
    )
    return user


async def event(services, user: uuid.UUID, kind: str, at: datetime) -> None:
    await services.db.execute(
        "INSERT INTO progress_events (user_id, kind, at) VALUES (%s, %s, %s)", (user, kind, at)
    )


async def chat(services, user: uuid.UUID, role: str, at: datetime) -> None:
    thread = str(uuid.uuid4())
    await services.db.execute("INSERT INTO threads (id, user_id) VALUES (%s, %s)", (thread, user))
    await services.db.execute(
        "INSERT INTO chat_messages (id, thread_id, role, content, created_at) VALUES (%s, %s, %s, %s, %s)",
        (str(uuid.uuid4()), thread, role, "hello", at),
    )


async def goal(services, user: uuid.UUID, title: str) -> None:
    await services.goals.create(
        user,
        goal_id=uuid.uuid4(),
        title=title,
        description="",
        value_category="craft",
        target_date=None,
        emotional_driver=None,
    )


async def run(services, user: uuid.UUID, now: datetime = NOW) -> dict[str, Any]:
    graph = build(services.settings).compile(checkpointer=services.checkpointer)
    # The context timezone is left at UTC on purpose: local days are the user's stored zone.
    ctx = Context(
        user_id=user, thread_id=f"nudge-test:{uuid.uuid4()}", timezone="UTC", now=now, services=services
    )
    return await graph.ainvoke({}, {"configurable": {"thread_id": ctx.thread_id}}, context=ctx)


async def rows(services, user: uuid.UUID) -> list[dict[str, Any]]:
    return await services.db.fetch("SELECT * FROM nudges WHERE user_id = %s ORDER BY created_at", (user,))


async def test_email_nudge_for_a_user_away_five_days(services) -> None:
    user = await make_user(services, prefs={"channels": ["email"], "nudge_tone": "gentle"})
    await goal(services, user, "Learn the guitar")
    await event(services, user, "session", datetime(2026, 1, 9, 18, 0, tzinfo=ZoneInfo(NY)))
    await event(services, user, "nudge_sent", NOW - timedelta(days=1))  # a nudge is not activity
    liked, _ = await services.memory.add(
        user, "personal", "The user likes to be encouraged gently, with a bit of humour", now=NOW
    )

    out = await run(services, user)

    assert out["scheduled"] is True and out["created"] is True
    assert out["days_inactive"] == 5
    assert out["degraded"] == []
    nudge = out["nudge"]
    assert nudge["channel"] == "email"
    assert datetime.fromisoformat(nudge["send_at"]) == TOMORROW_8AM_NY  # after quiet hours
    assert nudge["status"] == "scheduled" and nudge["sequence_index"] == 1
    assert "Learn the guitar" in nudge["message"] and shaming_phrase(nudge["message"]) is None
    assert nudge["subject"]

    (row,) = await rows(services, user)
    assert str(row["id"]) == nudge["id"]
    assert row["channel"] == "email" and row["message"] == nudge["message"]
    assert row["send_at"] == TOMORROW_8AM_NY
    assert str(row["streak_start"]) == "2026-01-10"  # the local day after the last activity
    assert row["idempotency_key"] == f"{user}:2026-01-14"  # the user's local day, not UTC's 15th

    (memory,) = [
        m for m in await services.memory.list(user, "task", 10, NOW) if "nudge" in m["metadata"]["tags"]
    ]
    assert memory["content"] == "Nudge scheduled: 5 days inactive, email"
    assert memory["metadata"]["tags"] == ["nudge", "email", "scheduled"]
    assert memory["metadata"]["nudge_id"] == nudge["id"]

    usage = await services.db.fetch("SELECT site FROM llm_usage WHERE user_id = %s", (user,))
    assert [u["site"] for u in usage] == ["nudges.write"]
    assert out["usage"]["calls"] == 1
    # A background read of the preference memory does not count as the user recalling it.
    stats = await services.db.fetchrow("SELECT access_count FROM memories WHERE id = %s", (uuid.UUID(liked),))
    assert stats["access_count"] == 0


async def test_a_second_run_the_same_day_returns_the_same_nudge(services) -> None:
    user = await make_user(services, prefs={"channels": ["email"]})
    await event(services, user, "mission_completed", NOW - timedelta(days=5))
    first = await run(services, user)
    second = await run(services, user, NOW + timedelta(hours=1))  # 23:30, still the 14th locally
    assert first["created"] is True and second["created"] is False
    assert second["scheduled"] is True
    assert second["nudge"]["id"] == first["nudge"]["id"]
    assert len(await rows(services, user)) == 1
    usage = await services.db.fetch("SELECT site FROM llm_usage WHERE user_id = %s", (user,))
    assert len(usage) == 1  # the second run wrote no message


async def test_a_user_who_chatted_yesterday_is_not_nudged(services) -> None:
    user = await make_user(services, prefs={"channels": ["email", "sms"]})
    await event(services, user, "session", NOW - timedelta(days=20))
    await chat(services, user, "user", NOW - timedelta(days=1))
    out = await run(services, user)
    assert out["scheduled"] is False
    assert out["reason"] == "active 1 day ago: no nudge needed"
    assert out["days_inactive"] == 1 and out["nudge"] is None
    assert await rows(services, user) == []
    assert await services.db.fetch("SELECT 1 FROM llm_usage WHERE user_id = %s", (user,)) == []


async def test_only_the_users_own_messages_count_as_activity(services) -> None:
    user = await make_user(services)
    await chat(services, user, "user", NOW - timedelta(days=3))
    await chat(services, user, "assistant", NOW - timedelta(hours=2))
    out = await run(services, user)
    assert out["days_inactive"] == 3 and out["scheduled"] is True


async def test_a_mission_completed_yesterday_counts_as_activity(services) -> None:
    user = await make_user(services)
    await event(services, user, "session", NOW - timedelta(days=10))
    await services.db.execute(
        """INSERT INTO missions (id, user_id, title, estimated_minutes, energy_level, status, completed_at)
           VALUES (%s, %s, 'Practice', 20, 'low', 'completed', %s)""",
        (uuid.uuid4(), user, NOW - timedelta(days=1)),
    )
    out = await run(services, user)
    assert out["scheduled"] is False and out["days_inactive"] == 1


async def test_a_brand_new_user_is_not_nudged(services) -> None:
    user = await make_user(services, created=NOW - timedelta(hours=3))
    out = await run(services, user)
    assert out["scheduled"] is False and out["days_inactive"] == 0
    assert out["reason"] == "active 0 days ago: no nudge needed"


async def test_sign_up_counts_when_there_is_no_activity(services) -> None:
    user = await make_user(services, created=NOW - timedelta(days=4))
    out = await run(services, user)
    assert out["days_inactive"] == 4 and out["scheduled"] is True


async def test_no_quiet_hours_sends_at_ten_local(services) -> None:
    user = await make_user(services, tz="Asia/Tokyo", prefs={"quiet_hours": None})
    await event(services, user, "session", NOW - timedelta(days=3))
    out = await run(services, user)  # 12:30 in Tokyo: 10:00 has passed, so tomorrow
    assert datetime.fromisoformat(out["nudge"]["send_at"]) == datetime(
        2026, 1, 16, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo")
    )


async def test_three_nudges_per_streak_across_days(services) -> None:
    user = await make_user(services, prefs={"channels": ["email", "sms"]})
    await event(services, user, "session", NOW - timedelta(days=5))
    outs = [await run(services, user, NOW + timedelta(days=d)) for d in range(4)]
    assert [o["days_inactive"] for o in outs] == [5, 6, 7, 8]
    assert [o["nudge"]["sequence_index"] for o in outs[:3]] == [1, 2, 3]
    assert [o["nudge"]["channel"] for o in outs[:3]] == ["email", "email", "sms"]
    assert outs[3]["scheduled"] is False and outs[3]["nudge"] is None
    assert outs[3]["reason"] == "already nudged 3 times in this inactive streak (max 3)"
    assert len(await rows(services, user)) == 3

    # Activity ends the streak: the next inactive streak starts counting from 1 again.
    await event(services, user, "mission_completed", NOW + timedelta(days=4))
    out = await run(services, user, NOW + timedelta(days=6))
    assert out["days_inactive"] == 2
    assert out["nudge"]["sequence_index"] == 1 and out["nudge"]["channel"] == "in_app"


async def test_dispatch_methods(own_services) -> None:
    services = own_services  # claiming sweeps every user's due nudges: a database of its own
    user = await make_user(services)
    await event(services, user, "session", NOW - timedelta(days=3))
    nudge = (await run(services, user))["nudge"]
    nid = uuid.UUID(nudge["id"])

    assert await services.nudges.claim_due(NOW, limit=1000) == []  # not due yet
    assert [n.id for n in await services.nudges.claim_due(TOMORROW_8AM_NY, limit=1000)] == [nudge["id"]]
    assert await services.nudges.claim_due(TOMORROW_8AM_NY, limit=1000) == []  # claimed: once
    (row,) = await rows(services, user)
    assert row["status"] == "sending"

    assert await services.nudges.mark_sent(nid, TOMORROW_8AM_NY) is True
    assert await services.nudges.mark_sent(nid, TOMORROW_8AM_NY) is False  # once
    (row,) = await rows(services, user)
    assert row["status"] == "sent" and row["sent_at"] == TOMORROW_8AM_NY
    sent = await services.db.fetch(
        "SELECT at FROM progress_events WHERE user_id = %s AND kind = 'nudge_sent'", (user,)
    )
    assert [e["at"] for e in sent] == [TOMORROW_8AM_NY]
    assert await services.nudges.claim_due(TOMORROW_8AM_NY, limit=1000) == []
    assert await services.nudges.mark_failed(nid, "already sent") is False

    # A sent nudge is not activity, and counts in the streak: the next day's is number 2.
    nxt = await run(services, user, NOW + timedelta(days=1))
    assert nxt["days_inactive"] == 4 and nxt["nudge"]["sequence_index"] == 2

    # A failed one does not count: the day after, the sequence continues from the sent one.
    assert await services.nudges.mark_failed(uuid.UUID(nxt["nudge"]["id"]), "smtp said no") is True
    after = await run(services, user, NOW + timedelta(days=2))
    assert after["nudge"]["sequence_index"] == 2

    listed = await services.nudges.list(user, 10)
    assert [n.id for n in listed] == [after["nudge"]["id"], nxt["nudge"]["id"], nudge["id"]]
    assert [n.status for n in listed] == ["scheduled", "failed", "sent"]
    assert all(n.user_id == str(user) for n in listed)
    assert len(await services.nudges.list(user, 2)) == 2


async def test_a_failed_nudge_today_blocks_another_today(services) -> None:
    user = await make_user(services)
    await event(services, user, "session", NOW - timedelta(days=3))
    first = await run(services, user)
    await services.nudges.mark_failed(uuid.UUID(first["nudge"]["id"]), "bounced")
    again = await run(services, user, NOW + timedelta(minutes=30))
    assert again["scheduled"] is False and again["created"] is False
    assert again["nudge"]["status"] == "failed"
    assert len(await rows(services, user)) == 1


async def test_store_reads_are_owner_scoped(services) -> None:
    user, other = await make_user(services), await make_user(services)
    await event(services, user, "session", NOW - timedelta(days=3))
    nudge = (await run(services, user))["nudge"]
    key = f"{user}:2026-01-14"
    assert (await services.nudges.by_key(user, key)).id == nudge["id"]
    assert await services.nudges.by_key(other, key) is None
    assert await services.nudges.list(other, 10) == []


async def test_the_daily_cap_counts_nudges_by_their_local_delivery_day(services) -> None:
    # 21:00 on the 13th in New York is 02:00 UTC on the 14th: sent at once, on the local 13th,
    # so at noon on the 14th nothing was delivered that local day yet: one more is allowed.
    early = await make_user(services, prefs={"max_per_day": 1})
    await event(services, early, "session", NOW - timedelta(days=6))
    evening = datetime(2026, 1, 13, 21, 0, tzinfo=ZoneInfo(NY))
    first = await run(services, early, evening)
    assert datetime.fromisoformat(first["nudge"]["send_at"]) == evening
    second = await run(services, early, datetime(2026, 1, 14, 12, 0, tzinfo=ZoneInfo(NY)))
    assert second["created"] is True and second["nudge"]["sequence_index"] == 2

    # 23:00 on the 14th is inside quiet hours: that nudge is delivered at 08:00 on the 15th, so
    # at noon on the 15th the one-per-day cap is already reached.
    late = await make_user(services, prefs={"max_per_day": 1})
    await event(services, late, "session", NOW - timedelta(days=6))
    first = await run(services, late, datetime(2026, 1, 14, 23, 0, tzinfo=ZoneInfo(NY)))
    assert datetime.fromisoformat(first["nudge"]["send_at"]) == datetime(
        2026, 1, 15, 8, 0, tzinfo=ZoneInfo(NY)
    )
    capped = await run(services, late, datetime(2026, 1, 15, 12, 0, tzinfo=ZoneInfo(NY)))
    assert capped["scheduled"] is False and capped["nudge"] is None
    assert capped["reason"] == "already nudged 1 times today (max 1)"
