"""The usage ledger (`llm_usage`): who spent what on which model, from which call site.

Two granularities, one table:
- per call: `UsageLedger.record`, the model gateway's default sink, one row per model call;
- per turn: a workflow that carries its usage in graph state (the chat graph) passes
  `PER_TURN` to the gateway, which then writes nothing per call, and writes the turn's total
  once, in its own write-back transaction, with `turn_statement` (unique `turn_key`, so a resumed
  or retried write-back writes it once)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.db import Database
from state.schemas import Usage

# True once a turn's usage row exists: statements of the same write-back that must not be
# applied twice (counters, merges) run before the row is inserted and skip under this condition.
TURN_RECORDED = "EXISTS (SELECT 1 FROM llm_usage WHERE turn_key = %(turn_key)s)"


class UsageLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, *, user_id: str | None, site: str, model: str, usage: Usage) -> None:
        await self.db.execute(
            """INSERT INTO llm_usage (user_id, site, model, input_tokens, output_tokens, cost_usd, calls)
               VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (
                uuid.UUID(user_id) if user_id else None,
                site,
                model,
                usage.input_tokens,
                usage.output_tokens,
                usage.cost_usd,
                usage.calls,
            ),
        )

    async def by_day(self, user_id: uuid.UUID, since: datetime, timezone: str) -> list[dict[str, Any]]:
        """The user's spend per local day since `since`, newest first (the admin's view of the
        ledger behind the daily budget)."""
        return await self.db.fetch(
            """SELECT (at AT TIME ZONE %s)::date AS day, sum(calls)::int AS calls,
                      sum(input_tokens)::int AS input_tokens, sum(output_tokens)::int AS output_tokens,
                      sum(cost_usd)::float AS cost_usd,
                      array_agg(DISTINCT model ORDER BY model) AS models
               FROM llm_usage WHERE user_id = %s AND at >= %s
               GROUP BY 1 ORDER BY 1 DESC""",
            (timezone, user_id, since),
        )


class PerTurn:
    """The sink of calls whose usage the caller records itself, once per turn (the gateway
    returns every call's usage; the chat graph adds it up in its state)."""

    async def record(self, *, user_id: str | None, site: str, model: str, usage: Usage) -> None:
        return None


PER_TURN = PerTurn()


def turn_statement(
    *, turn_key: str, user_id: uuid.UUID, site: str, model: str, usage: Usage
) -> tuple[str, dict[str, Any]]:
    """The one usage row of a turn (nothing if the turn already has it)."""
    return (
        """INSERT INTO llm_usage
               (user_id, site, model, input_tokens, output_tokens, cost_usd, calls, turn_key)
           VALUES (%(user)s, %(site)s, %(model)s, %(input)s, %(output)s, %(cost)s, %(calls)s, %(turn_key)s)
           ON CONFLICT (turn_key) DO NOTHING""",
        {
            "user": user_id,
            "site": site,
            "model": model,
            "input": usage.input_tokens,
            "output": usage.output_tokens,
            "cost": usage.cost_usd,
            "calls": usage.calls,
            "turn_key": turn_key,
        },
    )
