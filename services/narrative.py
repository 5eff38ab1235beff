"""Storage for narrative beats and hidden-quest unlocks (owner-scoped SQL)."""

from __future__ import annotations

from services.db import Database


class NarrativeStore:
    def __init__(self, db: Database) -> None:
        self.db = db
