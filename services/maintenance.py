"""SQL of the background jobs: who to process, and the nightly roll-ups. Set-based where it
can be (one statement for all users), per user where a pure function decides."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from services.db import Database
from state.schemas import Progress


class Maintenance:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def users(self) -> list[dict[str, Any]]:
        return await self.db.fetch("SELECT id, timezone FROM users ORDER BY created_at")

    async def users_with_active_goals(self) -> list[dict[str, Any]]:
        return await self.db.fetch(
            """SELECT DISTINCT u.id, u.timezone FROM users u
               JOIN goals g ON g.user_id = u.id AND g.status = 'active' ORDER BY u.id"""
        )

    async def inactive_users(self, now: dt.datetime, min_days: int) -> list[dict[str, Any]]:
        """Users whose last activity (progress other than nudges, or a chat message) is at least
        `min_days` days old; users who never did anything are left alone."""
        return await self.db.fetch(
            """WITH last AS (
                   SELECT u.id, u.timezone, greatest(
                       (SELECT max(at) FROM progress_events p
                        WHERE p.user_id = u.id AND p.kind <> 'nudge_sent'),
                       (SELECT max(m.created_at) FROM chat_messages m JOIN threads t ON t.id = m.thread_id
                        WHERE t.user_id = u.id AND m.role = 'user')) AS last_active
                   FROM users u)
               SELECT id, timezone, last_active FROM last
               WHERE last_active IS NOT NULL AND last_active <= %s - make_interval(days => %s)
               ORDER BY id""",
            (now, min_days),
        )

    async def prune_expired_task_memories(self, now: dt.datetime) -> int:
        return await self.db.execute(
            "DELETE FROM memories WHERE tier = 'task' AND expires_at IS NOT NULL AND expires_at <= %s", (now,)
        )

    async def consolidate_week(self, week: str, start: dt.datetime, end: dt.datetime) -> int:
        """One upsert for every user with activity in [start, end)."""
        return await self.db.execute(
            """INSERT INTO progress_weekly (user_id, week, completed, skipped, minutes)
               SELECT user_id, %(week)s,
                      count(*) FILTER (WHERE kind = 'mission_completed'),
                      count(*) FILTER (WHERE kind = 'mission_skipped'),
                      coalesce(sum(minutes), 0)
               FROM progress_events WHERE at >= %(start)s AND at < %(end)s
               GROUP BY user_id
               ON CONFLICT (user_id, week) DO UPDATE SET completed = EXCLUDED.completed,
                   skipped = EXCLUDED.skipped, minutes = EXCLUDED.minutes, updated_at = now()""",
            {"week": week, "start": start, "end": end},
        )

    async def store_dci(self, user_id: uuid.UUID, day: dt.date, progress: Progress) -> None:
        await self.db.execute(
            """INSERT INTO dci_daily (user_id, day, dci, zone, terms) VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (user_id, day) DO UPDATE SET dci = EXCLUDED.dci, zone = EXCLUDED.zone,
                   terms = EXCLUDED.terms""",
            (user_id, day, progress.dci, progress.zone, Jsonb(progress.terms)),
        )

    async def quest_stats(self, user_id: uuid.UUID) -> dict[str, Any]:
        row = await self.db.fetchrow(
            """SELECT (SELECT count(*) FROM progress_events
                       WHERE user_id = %(u)s AND kind = 'mission_completed') AS missions_completed,
                      (SELECT count(*) FROM goals WHERE user_id = %(u)s AND status = 'completed')
                          AS goals_completed,
                      (SELECT array_agg(quest_key) FROM quest_unlocks WHERE user_id = %(u)s) AS unlocked""",
            {"u": user_id},
        )
        assert row is not None
        return row

    async def unlock(self, user_id: uuid.UUID, key: str, title: str, description: str) -> bool:
        return bool(
            await self.db.execute(
                """INSERT INTO quest_unlocks (user_id, quest_key, title, description)
                   VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING""",
                (user_id, key, title, description),
            )
        )

    async def completion_patterns(
        self, user_id: uuid.UUID, tz: str, now: dt.datetime, days: int = 30
    ) -> dict[str, Any]:
        row = await self.db.fetchrow(
            """SELECT count(*) FILTER (WHERE kind = 'mission_completed') AS completed,
                      count(*) FILTER (WHERE kind = 'mission_skipped') AS skipped,
                      avg(minutes) FILTER (WHERE kind = 'mission_completed') AS avg_minutes,
                      mode() WITHIN GROUP (ORDER BY extract(isodow FROM at AT TIME ZONE %(tz)s))
                          FILTER (WHERE kind = 'mission_completed') AS best_isodow
               FROM progress_events
               WHERE user_id = %(u)s AND at > %(now)s - make_interval(days => %(days)s)""",
            {"u": user_id, "tz": tz, "now": now, "days": days},
        )
        assert row is not None
        done, skipped = int(row["completed"]), int(row["skipped"])
        days_names = ["", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
        return {
            "days": days,
            "completed": done,
            "skipped": skipped,
            "completion_rate": round(done / (done + skipped), 3) if done + skipped else None,
            "avg_minutes": round(float(row["avg_minutes"]), 1) if row["avg_minutes"] is not None else None,
            "best_weekday": days_names[int(row["best_isodow"])] if row["best_isodow"] else None,
        }
