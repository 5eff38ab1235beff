"""Reads adaptive_mission needs that services/goals.py does not offer: the user's latest chat
messages, the latest emotion recorded in their chat memories, and the missions they completed
recently. Every query is scoped by owner in its WHERE clause."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.db import Database
from services.missions import MISSION_COLS, mission_from_row
from state.goals import Mission
from state.schemas import EMOTIONS


class AdaptiveReads:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def recent_user_messages(
        self, user_id: uuid.UUID, *, since: datetime, until: datetime, limit: int = 3
    ) -> list[str]:
        """The user's own messages (role `user`, any of their threads) in (since, until], the
        newest `limit`, returned oldest first (newest last)."""
        rows = await self.db.fetch(
            """SELECT m.content FROM chat_messages m JOIN threads t ON t.id = m.thread_id
               WHERE t.user_id = %s AND m.role = 'user'
                 AND m.created_at > %s AND m.created_at <= %s
               ORDER BY m.created_at DESC, m.id DESC
               LIMIT %s""",
            (user_id, since, until, limit),
        )
        return [r["content"] for r in reversed(rows)]

    async def latest_emotion_scores(
        self, user_id: uuid.UUID, *, since: datetime, until: datetime
    ) -> dict[str, float] | None:
        """`metadata.emotion_scores` of the user's newest task memory created in (since, until]
        that carries them (the chat graph writes one per exchange); None when there is none."""
        row = await self.db.fetchrow(
            # `emotion_at` moves when a repeated exchange is merged into an older memory.
            """SELECT metadata -> 'emotion_scores' AS scores FROM memories
               WHERE user_id = %s AND tier = 'task'
                 AND jsonb_typeof(metadata -> 'emotion_scores') = 'object'
                 AND coalesce((metadata ->> 'emotion_at')::timestamptz, created_at) > %s
                 AND coalesce((metadata ->> 'emotion_at')::timestamptz, created_at) <= %s
               ORDER BY coalesce((metadata ->> 'emotion_at')::timestamptz, created_at) DESC
               LIMIT 1""",
            (user_id, since, until),
        )
        if row is None:
            return None
        return clean_scores(row["scores"])

    async def completed_missions_since(
        self, user_id: uuid.UUID, since: datetime, limit: int = 50
    ) -> list[Mission]:
        """Missions completed after `since`, newest first (the same window as
        `Missions.completed_since`, which counts their progress events)."""
        rows = await self.db.fetch(
            f"""SELECT {MISSION_COLS} FROM missions
                WHERE user_id = %s AND status = 'completed' AND completed_at > %s
                ORDER BY completed_at DESC, id
                LIMIT %s""",
            (user_id, since, limit),
        )
        return [mission_from_row(r) for r in rows]


def clean_scores(raw: Any) -> dict[str, float] | None:
    """Known labels only, as floats clamped to [0, 1]; None when nothing usable is left
    (metadata is stored JSON: never trust its shape)."""
    if not isinstance(raw, dict):
        return None
    scores: dict[str, float] = {}
    for label in EMOTIONS:
        value = raw.get(label)
        if isinstance(value, int | float) and not isinstance(value, bool):
            scores[label] = min(1.0, max(0.0, float(value)))
    return scores or None
