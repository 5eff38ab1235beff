"""Goals and their plans (milestones with their missions). Owner-scoped SQL; a plan is stored
once, under a lock on the goal row."""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from typing import Any

from core.errors import NotFound
from domain.ids import stable_id
from domain.missions import priority_score
from services.db import Database
from services.missions import MISSION_COLS, OPEN_STATUSES, mission_from_row
from state.goal_decomposition import MilestoneDraft, MissionDraft
from state.goals import Goal


def _goal(row: dict[str, Any]) -> Goal:
    return Goal(**{**row, "id": str(row["id"]), "user_id": str(row["user_id"])})


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
        """Change a goal's fields. Archiving it archives its open missions (pending, in progress,
        deferred) in the same transaction, so nothing recommends work on a goal the user let go
        of. (Un-archiving does not reopen them: which were open is not kept.)"""
        allowed = {"title", "description", "value_category", "target_date", "status"}
        fields = {k: v for k, v in changes.items() if k in allowed}
        if not fields:
            return await self.get(user_id, goal_id)
        sets = ", ".join(f"{k} = %({k})s" for k in fields)  # keys come from `allowed` only
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"""UPDATE goals SET {sets}, updated_at = now()
                    WHERE id = %(id)s AND user_id = %(user)s RETURNING *""",
                {**fields, "id": goal_id, "user": user_id},
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound("goal not found")
            if row["status"] == "archived":
                await conn.execute(
                    f"""UPDATE missions SET status = 'archived'
                        WHERE goal_id = %s AND user_id = %s AND status IN {OPEN_STATUSES}""",
                    (goal_id, user_id),
                )
        return _goal(row)

    async def plan(self, goal_id: uuid.UUID) -> dict[str, Any]:
        """The stored milestones and missions of a goal."""
        milestones = await self.db.fetch(
            "SELECT id, title, description, sequence FROM milestones WHERE goal_id = %s ORDER BY sequence",
            (goal_id,),
        )
        missions = await self.db.fetch(
            f"SELECT {MISSION_COLS} FROM missions WHERE goal_id = %s AND kind = 'regular' "
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
        milestones: builtins.list[MilestoneDraft],
        missions: builtins.list[builtins.list[MissionDraft]],
        now: dt.datetime,
    ) -> tuple[int, int, bool]:
        """Store milestones and missions in one transaction. The goal row is locked and a goal
        that already has a plan keeps it: re-running the decomposition duplicates nothing.
        Returns (milestones, missions, created)."""
        gid = uuid.UUID(goal.id)
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT status FROM goals WHERE id = %s FOR UPDATE", (gid,))
            locked = await cur.fetchone()
            # Archived while its plan was being made: the plan is kept, its missions archived.
            status = "archived" if locked and locked["status"] == "archived" else "pending"
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
                        status,
                    )
                    for i, batch in enumerate(missions, start=1)
                    for j, d in enumerate(batch, start=1)
                ]
                await c.executemany(
                    """INSERT INTO missions (id, user_id, goal_id, milestone_id, title, description,
                           estimated_minutes, energy_level, value_category, priority_score,
                           created_at, status)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    rows,
                )
            return len(milestones), len(rows), True
