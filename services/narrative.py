"""Storage for narrative beats and hidden-quest unlocks, and the reads the narrative_beat graph
gathers (a goal's project memories, the user's tagged personal memories, the goal's progress
counts). Every query is scoped by owner in the SQL itself.

A beat's title and teaser have no column in `narrative_beats` (migration 0003): they travel in
the in-app notification the graph records for the beat (`beat_notification_key`), and beat reads
join it back. A beat whose notification is missing gets its beat type as title and no teaser.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from domain.narrative import QuestTrigger
from services.db import Database


def beat_notification_key(beat_id: uuid.UUID | str) -> str:
    """The dedupe key of a beat's in-app notification (one per beat)."""
    return f"narrative_beat:{beat_id}"


_BEAT_SELECT = """
    SELECT b.id, b.goal_id, b.beat_type, b.trigger_key, b.text, b.unlocks, b.created_at,
           coalesce(n.title, initcap(replace(b.beat_type, '_', ' '))) AS title,
           n.body AS teaser
    FROM narrative_beats b
    LEFT JOIN notifications n
      ON n.user_id = b.user_id AND n.dedupe_key = 'narrative_beat:' || b.id::text
"""


def _beat(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "goal_id": str(row["goal_id"]),
        "beat_type": row["beat_type"],
        "trigger_key": row["trigger_key"],
        "title": row["title"],
        "text": row["text"],
        "teaser": row["teaser"],
        "unlocks": list(row["unlocks"] or []),
        "created_at": row["created_at"],
    }


def _memory(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "content": row["content"],
        "metadata": row["metadata"] or {},
        "created_at": row["created_at"],
    }


class NarrativeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- what the graph gathers ------------------------------------------------------------

    async def project_memories(
        self, user_id: uuid.UUID, goal_id: uuid.UUID, *, now: datetime, limit: int = 10
    ) -> list[dict[str, Any]]:
        """The goal's project memories (metadata goal_id = the goal), newest first:
        `{id, content, metadata, created_at}`."""
        rows = await self.db.fetch(
            """SELECT id, content, metadata, created_at FROM memories
               WHERE user_id = %s AND tier = 'project' AND metadata->>'goal_id' = %s
                 AND (expires_at IS NULL OR expires_at > %s)
               ORDER BY created_at DESC, id LIMIT %s""",
            (user_id, str(goal_id), now, limit),
        )
        return [_memory(r) for r in rows]

    async def tagged_memories(
        self, user_id: uuid.UUID, tag: str, *, now: datetime, tier: str = "personal", limit: int = 5
    ) -> list[dict[str, Any]]:
        """The user's memories of `tier` whose metadata tags contain `tag`, newest first."""
        rows = await self.db.fetch(
            """SELECT id, content, metadata, created_at FROM memories
               WHERE user_id = %s AND tier = %s AND metadata->'tags' @> %s
                 AND (expires_at IS NULL OR expires_at > %s)
               ORDER BY created_at DESC, id LIMIT %s""",
            (user_id, tier, Jsonb([tag]), now, limit),
        )
        return [_memory(r) for r in rows]

    async def goal_progress(
        self, user_id: uuid.UUID, goal_id: uuid.UUID, *, now: datetime, skip_window_days: int = 7
    ) -> dict[str, Any]:
        """One round trip. For the goal: missions (not archived) and completed, per-milestone
        counts `[{sequence, title, missions, completed}]`, skips in the last `skip_window_days`,
        the trigger keys that already have a beat, the latest beat's id and how many missions
        were completed or skipped since it. For the user: missions and goals completed, and the
        hidden quests already unlocked. A goal of someone else counts as empty."""
        row = await self.db.fetchrow(
            """WITH g AS (SELECT id FROM goals WHERE id = %(g)s AND user_id = %(u)s),
                    m AS (SELECT mi.milestone_id, mi.status FROM missions mi JOIN g ON mi.goal_id = g.id
                          WHERE mi.user_id = %(u)s AND mi.status <> 'archived'),
                    last AS (SELECT id, created_at FROM narrative_beats
                             WHERE user_id = %(u)s AND goal_id = %(g)s
                             ORDER BY created_at DESC, id DESC LIMIT 1)
               SELECT
                 (SELECT count(*) FROM m) AS goal_missions_total,
                 (SELECT count(*) FROM m WHERE status = 'completed') AS goal_missions_completed,
                 (SELECT count(*) FROM progress_events
                    WHERE user_id = %(u)s AND goal_id = %(g)s AND kind = 'mission_skipped'
                      AND at > %(now)s - make_interval(days => %(days)s) AND at <= %(now)s) AS recent_skips,
                 (SELECT count(*) FROM missions
                    WHERE user_id = %(u)s AND status = 'completed') AS missions_completed,
                 (SELECT count(*) FROM goals
                    WHERE user_id = %(u)s AND status = 'completed') AS goals_completed,
                 (SELECT coalesce(array_agg(quest_key ORDER BY quest_key), '{}') FROM quest_unlocks
                    WHERE user_id = %(u)s) AS unlocked,
                 (SELECT coalesce(array_agg(trigger_key ORDER BY trigger_key), '{}') FROM narrative_beats
                    WHERE user_id = %(u)s AND goal_id = %(g)s) AS beat_keys,
                 (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'sequence', ms.sequence,
                      'title', ms.title,
                      'missions', (SELECT count(*) FROM m WHERE m.milestone_id = ms.id),
                      'completed', (SELECT count(*) FROM m
                                    WHERE m.milestone_id = ms.id AND m.status = 'completed'))
                    ORDER BY ms.sequence), '[]'::jsonb)
                    FROM milestones ms JOIN g ON ms.goal_id = g.id) AS milestones,
                 (SELECT id FROM last) AS last_beat_id,
                 (SELECT count(*) FROM progress_events e, last
                    WHERE e.user_id = %(u)s AND e.goal_id = %(g)s
                      AND e.kind IN ('mission_completed', 'mission_skipped')
                      AND e.at > last.created_at AND e.at <= %(now)s) AS activity_since_last_beat""",
            {"u": user_id, "g": goal_id, "now": now, "days": skip_window_days},
        )
        assert row is not None
        return {
            "goal_missions_total": int(row["goal_missions_total"]),
            "goal_missions_completed": int(row["goal_missions_completed"]),
            "recent_skips": int(row["recent_skips"]),
            "missions_completed": int(row["missions_completed"]),
            "goals_completed": int(row["goals_completed"]),
            "milestones": [
                {
                    "sequence": int(ms["sequence"]),
                    "title": ms["title"],
                    "missions": int(ms["missions"]),
                    "completed": int(ms["completed"]),
                }
                for ms in row["milestones"]
            ],
            "unlocked": list(row["unlocked"]),
            "beat_keys": list(row["beat_keys"]),
            "last_beat_id": str(row["last_beat_id"]) if row["last_beat_id"] else None,
            "activity_since_last_beat": int(row["activity_since_last_beat"]),
        }

    # --- beats -------------------------------------------------------------------------------

    async def beat_for_trigger(
        self, user_id: uuid.UUID, goal_id: uuid.UUID, trigger_key: str
    ) -> dict[str, Any] | None:
        row = await self.db.fetchrow(
            _BEAT_SELECT + " WHERE b.user_id = %s AND b.goal_id = %s AND b.trigger_key = %s",
            (user_id, goal_id, trigger_key),
        )
        return _beat(row) if row else None

    async def get_beat(self, user_id: uuid.UUID, beat_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self.db.fetchrow(_BEAT_SELECT + " WHERE b.id = %s AND b.user_id = %s", (beat_id, user_id))
        return _beat(row) if row else None

    async def insert_beat(
        self,
        user_id: uuid.UUID,
        *,
        beat_id: uuid.UUID,
        goal_id: uuid.UUID,
        beat_type: str,
        trigger_key: str,
        text: str,
        unlocks: Sequence[str],
        now: datetime,
    ) -> tuple[dict[str, Any], bool]:
        """Insert once per (user, goal, trigger): returns (the stored beat, inserted). When the
        trigger already has a beat (a retried step, or a concurrent run that got there first),
        nothing is written and the stored one is returned."""
        inserted = await self.db.fetchrow(
            """INSERT INTO narrative_beats (id, user_id, goal_id, beat_type, trigger_key, text, unlocks,
                                            created_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT DO NOTHING RETURNING id""",
            (beat_id, user_id, goal_id, beat_type, trigger_key, text, Jsonb(list(unlocks)), now),
        )
        beat = await self.beat_for_trigger(user_id, goal_id, trigger_key)
        assert beat is not None
        return beat, inserted is not None

    async def list_beats(
        self, user_id: uuid.UUID, *, goal_id: uuid.UUID | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The user's beats, newest first (optionally of one goal): `{id, goal_id, beat_type,
        trigger_key, title, text, teaser, unlocks, created_at}` (ids as str, created_at a datetime)."""
        rows = await self.db.fetch(
            _BEAT_SELECT
            + """ WHERE b.user_id = %s AND (%s::uuid IS NULL OR b.goal_id = %s)
                  ORDER BY b.created_at DESC, b.id LIMIT %s""",
            (user_id, goal_id, goal_id, limit),
        )
        return [_beat(r) for r in rows]

    # --- hidden quests -------------------------------------------------------------------------

    async def record_unlocks(
        self, user_id: uuid.UUID, quests: Sequence[QuestTrigger], *, now: datetime
    ) -> list[str]:
        """Record unlocked quests; one already recorded is left as it is. Returns the keys this
        call recorded."""
        if not quests:
            return []
        rows = await self.db.fetch(
            """INSERT INTO quest_unlocks (user_id, quest_key, title, description, unlocked_at)
               SELECT %s, q.key, q.title, q.description, %s
               FROM unnest(%s::text[], %s::text[], %s::text[]) AS q(key, title, description)
               ON CONFLICT (user_id, quest_key) DO NOTHING RETURNING quest_key""",
            (
                user_id,
                now,
                [q.key for q in quests],
                [q.title for q in quests],
                [q.description for q in quests],
            ),
        )
        return [r["quest_key"] for r in rows]

    async def list_unlocks(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        """The user's unlocked hidden quests, oldest first: `{key, title, description, unlocked_at}`."""
        rows = await self.db.fetch(
            """SELECT quest_key, title, description, unlocked_at FROM quest_unlocks
               WHERE user_id = %s ORDER BY unlocked_at, quest_key""",
            (user_id,),
        )
        return [
            {
                "key": r["quest_key"],
                "title": r["title"],
                "description": r["description"],
                "unlocked_at": r["unlocked_at"],
            }
            for r in rows
        ]
