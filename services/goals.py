"""Goals, milestones, missions, notifications and background-run records. Owner-scoped SQL;
writes that a retried or resumed run may repeat are keyed so they happen once."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from core.errors import Conflict, NotFound
from domain.missions import priority_score
from services.db import Database
from state.goals import Goal, MilestoneDraft, Mission, MissionDraft

_MISSION_COLS = """id, goal_id, milestone_id, title, description, estimated_minutes, energy_level,
    value_category, priority_score, status, kind, first_step, created_at, completed_at"""

# Allowed mission transitions: action -> (from statuses, to status, progress event kind)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "start": (("pending", "deferred"), "in_progress", None),
    "complete": (("pending", "in_progress", "deferred"), "completed", "mission_completed"),
    "skip": (("pending", "in_progress"), "deferred", "mission_skipped"),
}


def _goal(row: dict[str, Any]) -> Goal:
    return Goal(**{**row, "id": str(row["id"]), "user_id": str(row["user_id"])})


def mission_from_row(row: dict[str, Any]) -> Mission:
    return Mission(
        **{
            **row,
            "id": str(row["id"]),
            "goal_id": str(row["goal_id"]) if row.get("goal_id") else None,
            "milestone_id": str(row["milestone_id"]) if row.get("milestone_id") else None,
        }
    )


def stable_id(*parts: object) -> uuid.UUID:
    """Deterministic ids make repeated writes (retries, resumed runs, re-runs) idempotent."""
    return uuid.uuid5(uuid.NAMESPACE_URL, ":".join(str(p) for p in parts))


class Goals:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        user_id: uuid.UUID,
        *,
        goal_id: uuid.UUID,
        title: str,
        description: str,
        value_category: str,
        target_date: dt.date | None,
        emotional_driver: str | None,
    ) -> Goal:
        """Insert once: a resumed goal_creation run re-uses the same `goal_id`."""
        row = await self.db.fetchrow(
            """INSERT INTO goals (id, user_id, title, description, value_category, target_date,
                                  emotional_driver)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET updated_at = goals.updated_at
               RETURNING *""",
            (goal_id, user_id, title, description, value_category, target_date, emotional_driver),
        )
        assert row is not None
        if row["user_id"] != user_id:
            raise NotFound("goal not found")
        return _goal(row)

    async def get(self, user_id: uuid.UUID, goal_id: uuid.UUID) -> Goal:
        row = await self.db.fetchrow("SELECT * FROM goals WHERE id = %s AND user_id = %s", (goal_id, user_id))
        if row is None:
            raise NotFound("goal not found")
        return _goal(row)

    async def list(self, user_id: uuid.UUID, status: str | None = None) -> list[Goal]:
        rows = await self.db.fetch(
            """SELECT * FROM goals WHERE user_id = %s AND (%s::text IS NULL OR status = %s)
               ORDER BY created_at DESC""",
            (user_id, status, status),
        )
        return [_goal(r) for r in rows]

    async def update(self, user_id: uuid.UUID, goal_id: uuid.UUID, changes: dict[str, Any]) -> Goal:
        allowed = {"title", "description", "value_category", "target_date", "status"}
        fields = {k: v for k, v in changes.items() if k in allowed}
        if not fields:
            return await self.get(user_id, goal_id)
        sets = ", ".join(f"{k} = %({k})s" for k in fields)  # keys come from `allowed` only
        row = await self.db.fetchrow(
            f"""UPDATE goals SET {sets}, updated_at = now()
                WHERE id = %(id)s AND user_id = %(user)s RETURNING *""",
            {**fields, "id": goal_id, "user": user_id},
        )
        if row is None:
            raise NotFound("goal not found")
        return _goal(row)

    async def plan(self, goal_id: uuid.UUID) -> dict[str, Any]:
        """The stored milestones and missions of a goal."""
        milestones = await self.db.fetch(
            "SELECT id, title, description, sequence FROM milestones WHERE goal_id = %s ORDER BY sequence",
            (goal_id,),
        )
        missions = await self.db.fetch(
            f"SELECT {_MISSION_COLS} FROM missions WHERE goal_id = %s AND kind = 'regular' "
            "ORDER BY created_at, title",
            (goal_id,),
        )
        by_ms: dict[str, list[dict[str, Any]]] = {}
        for m in missions:
            by_ms.setdefault(str(m["milestone_id"]), []).append(mission_from_row(m).model_dump(mode="json"))
        return {
            "goal_id": str(goal_id),
            "milestones": [
                {
                    "id": str(ms["id"]),
                    "sequence": ms["sequence"],
                    "title": ms["title"],
                    "description": ms["description"],
                    "missions": by_ms.get(str(ms["id"]), []),
                }
                for ms in milestones
            ],
        }

    async def store_plan(
        self,
        goal: Goal,
        milestones: list[MilestoneDraft],
        missions: list[list[MissionDraft]],
        now: dt.datetime,
    ) -> tuple[int, int, bool]:
        """Store milestones and missions in one transaction. The goal row is locked and a goal
        that already has a plan keeps it: re-running the decomposition duplicates nothing.
        Returns (milestones, missions, created)."""
        gid = uuid.UUID(goal.id)
        async with self.db.transaction() as conn:
            await conn.execute("SELECT 1 FROM goals WHERE id = %s FOR UPDATE", (gid,))
            cur = await conn.execute(
                """SELECT (SELECT count(*) FROM milestones WHERE goal_id = %(g)s) AS ms,
                          (SELECT count(*) FROM missions WHERE goal_id = %(g)s AND kind = 'regular') AS mi""",
                {"g": gid},
            )
            existing = await cur.fetchone()
            assert existing is not None
            if existing["ms"]:
                return int(existing["ms"]), int(existing["mi"]), False
            async with conn.cursor() as c:
                await c.executemany(
                    """INSERT INTO milestones (id, goal_id, title, description, sequence)
                       VALUES (%s, %s, %s, %s, %s)""",
                    [
                        (stable_id(gid, "milestone", i), gid, m.title, m.description, i)
                        for i, m in enumerate(milestones, start=1)
                    ],
                )
                rows = [
                    (
                        stable_id(gid, "mission", i, j),
                        uuid.UUID(goal.user_id),
                        gid,
                        stable_id(gid, "milestone", i),
                        d.title,
                        d.description,
                        d.estimated_minutes,
                        d.energy_level,
                        goal.value_category,
                        priority_score(
                            estimated_minutes=d.estimated_minutes,
                            created_at=now,
                            now=now,
                            target_date=goal.target_date,
                        ),
                        now,
                    )
                    for i, batch in enumerate(missions, start=1)
                    for j, d in enumerate(batch, start=1)
                ]
                await c.executemany(
                    """INSERT INTO missions (id, user_id, goal_id, milestone_id, title, description,
                           estimated_minutes, energy_level, value_category, priority_score,
                           created_at)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    rows,
                )
            return len(milestones), len(rows), True


class Missions:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, user_id: uuid.UUID, status: str | None = None, limit: int = 100) -> list[Mission]:
        rows = await self.db.fetch(
            f"""SELECT {_MISSION_COLS} FROM missions
                WHERE user_id = %s AND (%s::text IS NULL OR status = %s)
                ORDER BY priority_score DESC, created_at LIMIT %s""",
            (user_id, status, status, limit),
        )
        return [mission_from_row(r) for r in rows]

    async def get(self, user_id: uuid.UUID, mission_id: uuid.UUID) -> Mission:
        row = await self.db.fetchrow(
            f"SELECT {_MISSION_COLS} FROM missions WHERE id = %s AND user_id = %s",
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
                    WHERE id = %s RETURNING {_MISSION_COLS}""",
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


class Notifications:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        user_id: uuid.UUID,
        *,
        kind: str,
        title: str,
        body: str = "",
        data: dict[str, Any] | None = None,
        dedupe_key: str | None = None,
    ) -> None:
        await self.db.execute(
            """INSERT INTO notifications (user_id, kind, title, body, data, dedupe_key)
               VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING""",
            (user_id, kind, title, body, Jsonb(data or {}), dedupe_key),
        )

    async def list(self, user_id: uuid.UUID, limit: int = 50) -> list[dict[str, Any]]:
        return await self.db.fetch(
            """SELECT id, kind, title, body, data, created_at, read_at FROM notifications
               WHERE user_id = %s ORDER BY created_at DESC LIMIT %s""",
            (user_id, limit),
        )
