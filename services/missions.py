"""Missions: a user's missions, their transitions (with the progress event in the same
transaction), and missions created once under a deterministic id. Owner-scoped SQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from core.errors import Conflict, NotFound
from services.db import Database
from state.goals import Mission

# Mission statuses that still ask something of the user.
OPEN_STATUSES = "('pending', 'in_progress', 'deferred')"

MISSION_COLS = """id, goal_id, milestone_id, title, description, estimated_minutes, energy_level,
    value_category, priority_score, status, kind, first_step, created_at, completed_at"""

# Allowed mission transitions: action -> (from statuses, to status, progress event kind)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "start": (("pending", "deferred"), "in_progress", None),
    "complete": (("pending", "in_progress", "deferred"), "completed", "mission_completed"),
    "skip": (("pending", "in_progress"), "deferred", "mission_skipped"),
}


def mission_from_row(row: dict[str, Any]) -> Mission:
    return Mission(
        **{
            **row,
            "id": str(row["id"]),
            "goal_id": str(row["goal_id"]) if row.get("goal_id") else None,
            "milestone_id": str(row["milestone_id"]) if row.get("milestone_id") else None,
        }
    )


class Missions:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, user_id: uuid.UUID, status: str | None = None, limit: int = 100) -> list[Mission]:
        """A user's missions, highest priority first. Open missions of an archived goal (rows
        from before archiving archived them) are left out: the triad and `/missions/next` read
        pending missions here."""
        rows = await self.db.fetch(
            f"""SELECT {MISSION_COLS} FROM missions m
                WHERE user_id = %s AND (%s::text IS NULL OR status = %s)
                  AND NOT (status IN {OPEN_STATUSES} AND EXISTS (
                      SELECT 1 FROM goals g WHERE g.id = m.goal_id AND g.status = 'archived'))
                ORDER BY priority_score DESC, created_at LIMIT %s""",
            (user_id, status, status, limit),
        )
        return [mission_from_row(r) for r in rows]

    async def get(self, user_id: uuid.UUID, mission_id: uuid.UUID) -> Mission:
        row = await self.db.fetchrow(
            f"SELECT {MISSION_COLS} FROM missions WHERE id = %s AND user_id = %s",
            (mission_id, user_id),
        )
        if row is None:
            raise NotFound("mission not found")
        return mission_from_row(row)

    async def transition(
        self,
        user_id: uuid.UUID,
        mission_id: uuid.UUID,
        action: str,
        *,
        now: dt.datetime,
        minutes: int | None = None,
    ) -> Mission:
        """start/complete/skip, with the progress event in the same transaction."""
        sources, target, event = TRANSITIONS[action]
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT status, goal_id, estimated_minutes FROM missions "
                "WHERE id = %s AND user_id = %s FOR UPDATE",
                (mission_id, user_id),
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound("mission not found")
            if row["status"] not in sources:
                raise Conflict(f"cannot {action} a mission that is {row['status']}")
            cur = await conn.execute(
                f"""UPDATE missions SET status = %s,
                       started_at = CASE WHEN %s = 'in_progress' THEN %s ELSE started_at END,
                       completed_at = CASE WHEN %s = 'completed' THEN %s ELSE completed_at END
                    WHERE id = %s RETURNING {MISSION_COLS}""",
                (target, target, now, target, now, mission_id),
            )
            updated = await cur.fetchone()
            if event is not None:
                await conn.execute(
                    """INSERT INTO progress_events (user_id, kind, mission_id, goal_id, minutes, at)
                       VALUES (%s, %s, %s, %s, %s, %s)""",
                    (
                        user_id,
                        event,
                        mission_id,
                        row["goal_id"],
                        (minutes if minutes is not None else row["estimated_minutes"])
                        if event == "mission_completed"
                        else None,
                        now,
                    ),
                )
        assert updated is not None
        return mission_from_row(updated)

    async def create_once(
        self,
        user_id: uuid.UUID,
        mission_id: uuid.UUID,
        *,
        title: str,
        description: str,
        estimated_minutes: int,
        energy_level: str,
        kind: str,
        goal_id: uuid.UUID | None = None,
        value_category: str | None = None,
        priority: float = 0.0,
    ) -> Mission:
        """Insert a mission under a deterministic id, or return the one already there."""
        await self.db.execute(
            """INSERT INTO missions (id, user_id, goal_id, title, description, estimated_minutes,
                   energy_level, value_category, priority_score, kind)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (id) DO NOTHING""",
            (
                mission_id,
                user_id,
                goal_id,
                title,
                description,
                estimated_minutes,
                energy_level,
                value_category,
                priority,
                kind,
            ),
        )
        return await self.get(user_id, mission_id)

    async def set_prep(
        self, user_id: uuid.UUID, mission_id: uuid.UUID, *, first_step: str, priority: float
    ) -> None:
        await self.db.execute(
            "UPDATE missions SET first_step = %s, priority_score = %s WHERE id = %s AND user_id = %s",
            (first_step, priority, mission_id, user_id),
        )

    async def completed_since(self, user_id: uuid.UUID, since: dt.datetime) -> int:
        row = await self.db.fetchrow(
            """SELECT count(*) AS n FROM progress_events
               WHERE user_id = %s AND kind = 'mission_completed' AND at > %s""",
            (user_id, since),
        )
        return int(row["n"]) if row else 0

    async def minutes_since(self, user_id: uuid.UUID, since: dt.datetime) -> int:
        row = await self.db.fetchrow(
            """SELECT coalesce(sum(minutes), 0) AS m FROM progress_events
               WHERE user_id = %s AND at > %s AND minutes IS NOT NULL""",
            (user_id, since),
        )
        return int(row["m"]) if row else 0
