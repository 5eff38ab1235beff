"""Progress reads for the graphs: one round trip for the window's counts and the streak days."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from domain.calendar import local_day
from domain.progress import DciInputs, dci, dci_terms, dci_zone, streak_from_days
from services.db import Database
from state.schemas import Progress


class ProgressService:
    def __init__(self, db: Database, window_days: int) -> None:
        self.db = db
        self.window_days = window_days

    async def recent(self, user_id: uuid.UUID, tz: str, now: datetime) -> Progress:
        row = await self.db.fetchrow(
            """WITH w AS (
                   SELECT * FROM progress_events
                   WHERE user_id = %(u)s AND at > %(now)s - make_interval(days => %(days)s)
                     AND at <= %(now)s)
               SELECT
                 (SELECT count(*) FROM w WHERE kind = 'mission_completed') AS completed,
                 (SELECT count(*) FROM w WHERE kind = 'mission_skipped') AS skipped,
                 (SELECT avg(minutes) FROM w WHERE minutes IS NOT NULL
                    AND kind IN ('session', 'mission_completed')) AS avg_minutes,
                 (SELECT count(DISTINCT goal_id) FROM w
                    WHERE kind = 'mission_completed' AND goal_id IS NOT NULL) AS goals,
                 (SELECT count(*) FROM w WHERE kind = 'nudge_sent') AS nudges_sent,
                 (SELECT count(*) FROM w WHERE kind = 'nudge_acted') AS nudges_acted,
                 (SELECT coalesce(array_agg(DISTINCT (at AT TIME ZONE %(tz)s)::date), '{}')
                    FROM progress_events
                    WHERE user_id = %(u)s AND kind = 'mission_completed'
                      AND at > %(now)s - interval '400 days' AND at <= %(now)s) AS days""",
            {"u": user_id, "now": now, "days": self.window_days, "tz": tz},
        )
        assert row is not None
        return progress_from_counts(row, now=now, tz=tz, window_days=self.window_days)


def progress_from_counts(row: dict[str, Any], *, now: datetime, tz: str, window_days: int) -> Progress:
    completed = int(row["completed"])
    goals = int(row["goals"])
    inputs = DciInputs(
        streak_days=streak_from_days(set(row["days"]), today=local_day(now, tz)),
        completed=completed,
        skipped=int(row["skipped"]),
        avg_session_minutes=float(row["avg_minutes"] or 0.0),
        missions_per_active_goal=completed / goals if goals else 0.0,
        nudges_sent=int(row["nudges_sent"]),
        nudges_acted=int(row["nudges_acted"]),
    )
    value = dci(inputs)
    return Progress(
        window_days=window_days,
        completed=completed,
        skipped=inputs.skipped,
        streak_days=inputs.streak_days,
        dci=value,
        zone=dci_zone(value),
        terms={k: round(v, 4) for k, v in dci_terms(inputs).items()},
    )
