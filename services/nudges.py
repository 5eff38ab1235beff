"""Storage for nudges (owner-scoped SQL): what personalized_nudge reads to decide (last activity,
nudges already in this streak and today) and writes (one nudge per user per local day), the
list behind GET /api/v1/nudges, and what the dispatch job needs (due, mark_sent, mark_failed)."""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from core.errors import NotFound
from core.logging import get_logger
from domain.ids import stable_id
from services.db import Database
from state.nudges import Nudge

log = get_logger("delight.nudges")

# The statuses that count against the caps: a cancelled or failed nudge never reached the user.
_COUNTED = ("scheduled", "sending", "sent")
# A nudge claimed this long ago and neither sent nor failed: its sender died; claim it again.
RECLAIM_AFTER = dt.timedelta(minutes=10)


def nudge_key(user_id: uuid.UUID | str, local_date: dt.date) -> str:
    """The idempotency key: one nudge per user per local day."""
    return f"{user_id}:{local_date.isoformat()}"


def nudge_id(key: str) -> uuid.UUID:
    """Derived from the key, so a retried insert targets the same row."""
    return stable_id("nudge", key)


def _nudge(row: dict[str, Any]) -> Nudge:
    fields = {k: v for k, v in row.items() if k in Nudge.model_fields}
    return Nudge(**{**fields, "id": str(row["id"]), "user_id": str(row["user_id"])})


@dataclass(frozen=True)
class Activity:
    last_active: dt.datetime  # the latest activity, or the sign-up time when there is none
    timezone: str  # users.timezone
    signed_up_only: bool  # no activity yet: last_active is the sign-up time


class NudgeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def preferences(self, user_id: uuid.UUID) -> dict[str, Any]:
        """The user's raw `users.preferences` (merged over defaults by `NudgePreferences`)."""
        row = await self.db.fetchrow("SELECT preferences FROM users WHERE id = %s", (user_id,))
        if row is None:
            raise NotFound("user not found")
        return dict(row["preferences"] or {})

    async def last_activity(self, user_id: uuid.UUID, now: dt.datetime) -> Activity:
        """The latest of: a progress event of any kind but nudge_sent (a nudge going out is not
        the user doing something), a chat message the user wrote, a mission completion. Only
        what happened up to `now` counts. None of them: the user's creation time."""
        row = await self.db.fetchrow(
            """SELECT u.timezone, u.created_at, greatest(
                   (SELECT max(at) FROM progress_events
                     WHERE user_id = u.id AND kind <> 'nudge_sent' AND at <= %(now)s),
                   (SELECT max(m.created_at) FROM chat_messages m JOIN threads t ON t.id = m.thread_id
                     WHERE t.user_id = u.id AND m.role = 'user' AND m.created_at <= %(now)s),
                   (SELECT max(completed_at) FROM missions
                     WHERE user_id = u.id AND completed_at <= %(now)s)
               ) AS last_event
               FROM users u WHERE u.id = %(u)s""",
            {"u": user_id, "now": now},
        )
        if row is None:
            raise NotFound("user not found")
        last = row["last_event"]
        return Activity(last or row["created_at"], row["timezone"], last is None)

    async def tally(
        self, user_id: uuid.UUID, *, streak_start: dt.date, day: dt.date, tz: str
    ) -> tuple[int, int]:
        """(nudges in the inactive streak that began on `streak_start`, nudges due on the local
        `day`), counting scheduled and sent ones."""
        row = await self.db.fetchrow(
            """SELECT count(*) FILTER (WHERE streak_start = %(start)s) AS in_streak,
                      count(*) FILTER (WHERE (send_at AT TIME ZONE %(tz)s)::date = %(day)s) AS today
               FROM nudges WHERE user_id = %(u)s AND status = ANY(%(counted)s)""",
            {"u": user_id, "start": streak_start, "day": day, "tz": tz, "counted": list(_COUNTED)},
        )
        assert row is not None
        return int(row["in_streak"]), int(row["today"])

    async def by_key(self, user_id: uuid.UUID, key: str) -> Nudge | None:
        row = await self.db.fetchrow(
            "SELECT * FROM nudges WHERE idempotency_key = %s AND user_id = %s", (key, user_id)
        )
        return _nudge(row) if row else None

    async def create(
        self,
        user_id: uuid.UUID,
        *,
        key: str,
        channel: str,
        message: str,
        subject: str | None,
        send_at: dt.datetime,
        sequence_index: int,
        streak_start: dt.date,
    ) -> tuple[Nudge, bool]:
        """Insert once per key (ON CONFLICT DO NOTHING); returns (nudge, created). A conflict
        (a second run the same day, or two racing) returns the stored nudge, created False."""
        row = await self.db.fetchrow(
            """INSERT INTO nudges (id, user_id, channel, message, subject, send_at, sequence_index,
                                   streak_start, idempotency_key)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT DO NOTHING
               RETURNING *""",
            (nudge_id(key), user_id, channel, message, subject, send_at, sequence_index, streak_start, key),
        )
        if row is not None:
            return _nudge(row), True
        existing = await self.by_key(user_id, key)
        if existing is None:  # the key belongs to no row of this user: never another's
            raise NotFound("nudge not found")
        return existing, False

    async def list(self, user_id: uuid.UUID, limit: int = 50) -> list[Nudge]:
        """The user's nudges, newest first."""
        rows = await self.db.fetch(
            "SELECT * FROM nudges WHERE user_id = %s ORDER BY created_at DESC, id LIMIT %s",
            (user_id, limit),
        )
        return [_nudge(r) for r in rows]

    async def claim_due(self, now: dt.datetime, limit: int = 100) -> builtins.list[Nudge]:
        """Due nudges (all users), each claimed (`sending`) by this caller alone: overlapping
        sweeps and several workers never send one twice (SKIP LOCKED). The claimer passes each to
        `mark_sent` or `mark_failed`; one whose sender died is claimed again after RECLAIM_AFTER."""
        rows = await self.db.fetch(
            """UPDATE nudges SET status = 'sending', claimed_at = %(now)s
               WHERE id IN (SELECT id FROM nudges
                            WHERE (status = 'scheduled' AND send_at <= %(now)s)
                               OR (status = 'sending' AND claimed_at < %(stale)s)
                            ORDER BY send_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
               RETURNING *""",
            {"now": now, "stale": now - RECLAIM_AFTER, "limit": limit},
        )
        return sorted((_nudge(r) for r in rows), key=lambda n: (n.send_at, n.id))

    async def mark_sent(self, nudge_id: uuid.UUID, now: dt.datetime) -> bool:
        """sending → sent, and the `nudge_sent` progress event (DCI's nudge term), in one
        transaction. False (and no event) when the nudge was not being sent: marking twice
        records one event."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                """UPDATE nudges SET status = 'sent', sent_at = %s
                   WHERE id = %s AND status = 'sending' RETURNING user_id""",
                (now, nudge_id),
            )
            row = await cur.fetchone()
            if row is None:
                return False
            await conn.execute(
                "INSERT INTO progress_events (user_id, kind, at) VALUES (%s, 'nudge_sent', %s)",
                (row["user_id"], now),
            )
        return True

    async def mark_failed(self, nudge_id: uuid.UUID, reason: str) -> bool:
        """scheduled or sending → failed, with the reason. A failed nudge does not count against
        the caps."""
        changed = await self.db.execute(
            """UPDATE nudges SET status = 'failed', failure_reason = %s
               WHERE id = %s AND status IN ('scheduled', 'sending')""",
            (reason[:1000], nudge_id),
        )
        if changed:
            log.warning("nudge failed", extra={"nudge_id": str(nudge_id), "reason": reason[:500]})
        return bool(changed)
