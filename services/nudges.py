"""Storage for nudges (owner-scoped SQL)."""

from __future__ import annotations

from services.db import Database


class NudgeStore:
    def __init__(self, db: Database) -> None:
        self.db = db
