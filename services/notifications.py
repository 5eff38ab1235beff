"""Notifications: what the app shows the user (goal created, quests ready, a new story beat),
each written once per dedupe key."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from services.db import Database


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
