"""Users: one row per auth subject, created on first use."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from core.text import require_storable
from services.db import Database


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    subject: str
    timezone: str = "UTC"
    preferences: dict[str, Any] = field(default_factory=dict)


class Users:
    def __init__(self, db: Database, cache_size: int = 10_000) -> None:
        self.db = db
        self._cache: OrderedDict[str, User] = OrderedDict()
        self._cache_size = cache_size

    async def ensure(self, subject: str) -> User:
        """The user for an auth subject (`Principal.subject`: `dev:<id>` for dev tokens, the JWT
        `sub` otherwise), created on first use (cached: subjects never move)."""
        if (hit := self._cache.get(subject)) is not None:
            self._cache.move_to_end(subject)
            return hit
        require_storable("subject", subject)
        row = await self.db.fetchrow(
            """INSERT INTO users (subject) VALUES (%s)
               ON CONFLICT (subject) DO UPDATE SET subject = EXCLUDED.subject
               RETURNING id, subject, timezone, preferences""",
            (subject,),
        )
        assert row is not None
        user = User(row["id"], row["subject"], row["timezone"], row["preferences"])
        self._cache[subject] = user
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return user

    async def timezone(self, user_id: uuid.UUID) -> str | None:
        """The user's IANA timezone; None when there is no such user."""
        row = await self.db.fetchrow("SELECT timezone FROM users WHERE id = %s", (user_id,))
        return None if row is None else str(row["timezone"])

    async def exists(self, user_id: uuid.UUID) -> bool:
        return await self.db.fetchrow("SELECT 1 AS ok FROM users WHERE id = %s", (user_id,)) is not None
