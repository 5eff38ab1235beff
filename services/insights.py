"""Storage and reads for weekly insights (owner-scoped SQL: every query filters by user).

One `insights` row per (user, ISO week), id `stable_id(user_id, week)`. The row is written once;
only a row whose `stats.degraded` is non-empty (one of its gathering branches fell back) is
replaced by a later run of the same week.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from domain.calendar import WEEKDAYS
from services.db import Database

_COLS = "id, week, text, dci, stats, highlight_reel, created_at"
TOP_MISSIONS = 5
MAX_TASK_MEMORIES = 50


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "id": str(row["id"]), "dci": float(row["dci"])}


class InsightStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- what the week's insight is made from ---------------------------------------------------

    async def task_memories(
        self,
        user_id: uuid.UUID,
        *,
        since: datetime,
        until: datetime,
        now: datetime,
        limit: int = MAX_TASK_MEMORIES,
    ) -> list[dict[str, Any]]:
        """The user's unexpired task memories created in [since, until), newest first."""
        rows = await self.db.fetch(
            """SELECT id, content, metadata, created_at FROM memories
               WHERE user_id = %s AND tier = 'task' AND created_at >= %s AND created_at < %s
                 AND (expires_at IS NULL OR expires_at > %s)
               ORDER BY created_at DESC, id LIMIT %s""",
            (user_id, since, until, now, limit),
        )
        return [
            {
                "id": str(r["id"]),
                "content": r["content"],
                "created_at": r["created_at"].isoformat(),
                "tags": list((r["metadata"] or {}).get("tags") or []),
            }
            for r in rows
        ]

    async def week_stats(
        self, user_id: uuid.UUID, *, tz: str, since: datetime, until: datetime, top: int = TOP_MISSIONS
    ) -> dict[str, Any]:
        """Progress events in [since, until): missions completed and skipped, focused minutes
        (sessions and completions), completions per local weekday (Mon..Sun, all seven keys),
        the best weekday (most completions; ties: earliest in the week; None without any) and
        the most completed mission titles (count desc, then title)."""
        row = await self.db.fetchrow(
            """WITH w AS (
                   SELECT e.kind, e.minutes, e.at, m.title
                   FROM progress_events e
                   LEFT JOIN missions m ON m.id = e.mission_id AND m.user_id = e.user_id
                   WHERE e.user_id = %(u)s AND e.at >= %(since)s AND e.at < %(until)s)
               SELECT
                 (SELECT count(*) FROM w WHERE kind = 'mission_completed') AS completed,
                 (SELECT count(*) FROM w WHERE kind = 'mission_skipped') AS skipped,
                 (SELECT coalesce(sum(minutes), 0) FROM w
                    WHERE kind IN ('session', 'mission_completed')) AS minutes,
                 (SELECT coalesce(jsonb_object_agg(d, n), '{}'::jsonb) FROM (
                    SELECT extract(isodow FROM at AT TIME ZONE %(tz)s)::int AS d, count(*) AS n
                    FROM w WHERE kind = 'mission_completed' GROUP BY 1) x) AS by_dow,
                 (SELECT coalesce(jsonb_agg(jsonb_build_object('title', title, 'count', n)
                                            ORDER BY n DESC, title), '[]'::jsonb) FROM (
                    SELECT title, count(*) AS n FROM w
                    WHERE kind = 'mission_completed' AND title IS NOT NULL
                    GROUP BY title ORDER BY n DESC, title LIMIT %(top)s) t) AS top""",
            {"u": user_id, "since": since, "until": until, "tz": tz, "top": top},
        )
        assert row is not None
        by_dow = {int(k): int(v) for k, v in (row["by_dow"] or {}).items()}
        by_weekday = {name: by_dow.get(i, 0) for i, name in enumerate(WEEKDAYS, start=1)}
        best = max(WEEKDAYS, key=lambda d: by_weekday[d])  # max keeps the first of equal counts
        return {
            "completed": int(row["completed"]),
            "skipped": int(row["skipped"]),
            "minutes": int(row["minutes"]),
            "by_weekday": by_weekday,
            "best_weekday": best if by_weekday[best] > 0 else None,
            "top_missions": [{"title": t["title"], "count": int(t["count"])} for t in row["top"]],
        }

    # --- the insights themselves ----------------------------------------------------------------

    async def get(self, user_id: uuid.UUID, week: str) -> dict[str, Any] | None:
        """The user's insight for `week`: {id, week, text, dci, stats, highlight_reel,
        created_at}, or None."""
        row = await self.db.fetchrow(
            f"SELECT {_COLS} FROM insights WHERE user_id = %s AND week = %s", (user_id, week)
        )
        return _row(row) if row else None

    async def list(self, user_id: uuid.UUID, limit: int = 20) -> list[dict[str, Any]]:
        """The user's insights, newest week first (`GET /api/v1/insights`)."""
        rows = await self.db.fetch(
            f"SELECT {_COLS} FROM insights WHERE user_id = %s ORDER BY week DESC LIMIT %s",
            (user_id, limit),
        )
        return [_row(r) for r in rows]

    async def store(
        self,
        user_id: uuid.UUID,
        *,
        insight_id: uuid.UUID,
        week: str,
        text: str,
        dci: float,
        stats: dict[str, Any],
    ) -> tuple[dict[str, Any], bool]:
        """Insert the week's insight once; returns (stored row, written). A row already there is
        kept (written=False) unless it was degraded (`stats.degraded` non-empty): then it is
        replaced in place, same id, its highlight reel cleared."""
        row = await self.db.fetchrow(
            f"""INSERT INTO insights (id, user_id, week, text, dci, stats)
                VALUES (%s, %s, %s, %s, %s, %s)
                ON CONFLICT (user_id, week) DO UPDATE
                   SET text = EXCLUDED.text, dci = EXCLUDED.dci, stats = EXCLUDED.stats,
                       highlight_reel = NULL, created_at = now()
                   WHERE jsonb_array_length(coalesce(insights.stats -> 'degraded', '[]'::jsonb)) > 0
                RETURNING {_COLS}""",
            (insight_id, user_id, week, text, dci, Jsonb(stats)),
        )
        if row is not None:
            return _row(row), True
        existing = await self.get(user_id, week)
        assert existing is not None  # the conflict was on this user's row for this week
        return existing, False

    async def set_highlight_reel(
        self, user_id: uuid.UUID, week: str, reel: dict[str, Any]
    ) -> dict[str, Any] | None:
        row = await self.db.fetchrow(
            f"""UPDATE insights SET highlight_reel = %s WHERE user_id = %s AND week = %s
                RETURNING {_COLS}""",
            (Jsonb(reel), user_id, week),
        )
        return _row(row) if row else None
