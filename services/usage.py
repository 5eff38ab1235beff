"""The usage ledger: one row per LLM call (user, call site, model, tokens, cost)."""

from __future__ import annotations

import uuid

from services.db import Database
from state.schemas import Usage


class UsageLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, *, user_id: str | None, site: str, model: str, usage: Usage) -> None:
        await self.db.execute(
            """INSERT INTO llm_usage (user_id, site, model, input_tokens, output_tokens, cost_usd)
               VALUES (%s, %s, %s, %s, %s, %s)""",
            (
                uuid.UUID(user_id) if user_id else None,
                site,
                model,
                usage.input_tokens,
                usage.output_tokens,
                usage.cost_usd,
            ),
        )
