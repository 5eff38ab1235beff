"""Three-tier memory (table `memories`, migrations 0001 and 0006), in psycopg on the process's
one pool.

- Recall is ONE statement for all three tiers: per tier the nearest `MEMORY_CANDIDATES_PER_TIER`
  rows (user, tier, embedder and expiry filtered inside the SQL), ranked by
  similarity x recency x frequency (the formula of domain/memory.py, written in SQL so the tier
  quotas can be cut inside the query), cut to the quotas.
- A write is ONE statement too: merge into the nearest memory of the same user and tier when the
  cosine similarity exceeds MEMORY_MERGE_THRESHOLD, else insert (idempotent on the given id).
- A memory whose embedding failed is stored without a vector (recall skips it) and embedded later
  by `settle_statement`; the chat write-back does that for the user's waiting rows.

The chat turn's write-back (services/writeback.py) runs these statements inside its own pipelined
transaction, which is why they are also exposed as (sql, params) builders."""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from core.errors import NotFound
from core.settings import Settings
from domain.memory import RankingParams
from services.db import Database
from services.embeddings import CachedEmbeddings
from state.schemas import TIERS, MemoryHit, Tier

Statement = tuple[str, dict[str, Any]]


def vector_text(vec: Sequence[float]) -> str:
    """pgvector's text form; `repr` keeps every float exactly (the server parses it once)."""
    return "[" + ",".join(map(repr, map(float, vec))) + "]"


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, default=str)


# Metadata of a memory merged into `old`: newer keys win, tags are the sorted union (codepoint
# order, as Python sorts). `{old}` and `{new}` are jsonb expressions.
_MERGED_METADATA = """({old} || {new} || jsonb_build_object('tags', (
    SELECT coalesce(jsonb_agg(t ORDER BY t COLLATE "C"), '[]'::jsonb) FROM (
        SELECT DISTINCT t FROM jsonb_array_elements_text(
            coalesce({old} -> 'tags', '[]'::jsonb) || coalesce({new} -> 'tags', '[]'::jsonb)) AS t) s)))"""

# The nearest other memory of the same user and tier above the merge threshold (at most one).
_NEAR = """SELECT m.id FROM memories m, q
    WHERE m.user_id = %(user)s AND m.tier = %(tier)s AND m.embedder = %(embedder)s
      AND m.embedding IS NOT NULL AND m.id <> %(id)s
      AND (m.expires_at IS NULL OR m.expires_at > %(now)s)
      AND 1 - (m.embedding <=> q.v) > %(threshold)s
    ORDER BY m.embedding <=> q.v LIMIT 1"""

# Merge into the near memory, else insert. `{unless}` is a condition under which nothing is
# merged (the write-back's "this turn is already recorded"); inserting is idempotent by id.
_ADD = (
    """WITH q AS (SELECT %(vec)s::vector AS v),
near AS ("""
    + _NEAR
    + """),
merged AS (
    UPDATE memories m SET metadata = """
    + _MERGED_METADATA.format(old="m.metadata", new="%(meta)s::jsonb")
    + """, accessed_at = %(now)s, access_count = m.access_count + 1,
        expires_at = CASE WHEN %(expires)s::timestamptz IS NULL THEN m.expires_at
                          ELSE greatest(m.expires_at, %(expires)s::timestamptz) END
    FROM near WHERE m.id = near.id AND NOT ({unless})
    RETURNING m.id),
inserted AS (
    INSERT INTO memories (id, user_id, tier, content, embedding, embedder, metadata,
                          created_at, accessed_at, access_count, expires_at)
    SELECT %(id)s, %(user)s, %(tier)s, %(content)s, q.v, %(embedder)s, %(meta)s::jsonb,
           %(now)s, %(now)s, 0, %(expires)s FROM q
    WHERE NOT EXISTS (SELECT 1 FROM near)
    ON CONFLICT (id) DO NOTHING
    RETURNING id)
SELECT coalesce((SELECT id FROM near), %(id)s) AS id, EXISTS (SELECT 1 FROM near) AS merged"""
)

# A memory whose embedding failed: stored now, recalled once `settle_statement` gave it a vector.
_ADD_WITHOUT_VECTOR = """INSERT INTO memories (id, user_id, tier, content, embedding, embedder, metadata,
                          created_at, accessed_at, access_count, expires_at)
    VALUES (%(id)s, %(user)s, %(tier)s, %(content)s, NULL, %(embedder)s, %(meta)s::jsonb,
            %(now)s, %(now)s, 0, %(expires)s)
    ON CONFLICT (id) DO NOTHING"""

# Give a waiting memory its vector; if it turns out to be a near-duplicate of a memory that
# has one, merge it into that one instead (as an immediate write would have) and drop it.
_SETTLE = (
    """WITH q AS (SELECT %(vec)s::vector AS v),
p AS (SELECT id, tier, metadata, accessed_at, expires_at FROM memories
      WHERE id = %(id)s AND user_id = %(user)s AND embedding IS NULL),
near AS (SELECT m.id FROM memories m, q, p
    WHERE m.user_id = %(user)s AND m.tier = p.tier AND m.embedder = %(embedder)s
      AND m.embedding IS NOT NULL AND m.id <> p.id
      AND (m.expires_at IS NULL OR m.expires_at > %(now)s)
      AND 1 - (m.embedding <=> q.v) > %(threshold)s
    ORDER BY m.embedding <=> q.v LIMIT 1),
merged AS (
    UPDATE memories m SET metadata = """
    + _MERGED_METADATA.format(old="m.metadata", new="p.metadata")
    + """, accessed_at = greatest(m.accessed_at, p.accessed_at), access_count = m.access_count + 1,
        expires_at = CASE WHEN p.expires_at IS NULL THEN m.expires_at
                          ELSE greatest(m.expires_at, p.expires_at) END
    FROM near, p WHERE m.id = near.id
    RETURNING m.id),
dropped AS (DELETE FROM memories WHERE id = (SELECT id FROM p) AND EXISTS (SELECT 1 FROM near))
UPDATE memories SET embedding = q.v, embedder = %(embedder)s FROM q
WHERE memories.id = (SELECT id FROM p) AND NOT EXISTS (SELECT 1 FROM near)"""
)

# Ranking of domain/memory.py in SQL:
#   similarity x (floor + (1 - floor) * 0.5 ^ (age_days / half_life)) x min(cap, 1 + w * ln(1 + n))
_RECALL = """WITH q AS (SELECT %(vec)s::vector AS v),
hits AS (
    SELECT id, tier, content, similarity, score, distance FROM (
        SELECT s.*, t.quota,
               row_number() OVER (PARTITION BY s.tier ORDER BY s.score DESC, s.distance) AS rank
        FROM (VALUES ('personal', %(q_personal)s::int), ('project', %(q_project)s::int),
                     ('task', %(q_task)s::int)) AS t(tier, quota)
        CROSS JOIN LATERAL (
            SELECT c.id, c.tier, c.content, c.distance, 1 - c.distance AS similarity,
                   (1 - c.distance)
                   * (%(floor)s + (1 - %(floor)s) * power(0.5::float8, greatest(0::float8,
                        extract(epoch FROM %(now)s - c.accessed_at)::float8 / 86400) / %(half_life)s))
                   * least(%(cap)s, 1 + %(weight)s * ln(1 + greatest(0, c.access_count)::float8)) AS score
            FROM (SELECT m.id, m.tier, m.content, m.accessed_at, m.access_count,
                         m.embedding <=> q.v AS distance
                  FROM memories m, q
                  WHERE m.user_id = %(user)s AND m.tier = t.tier AND m.embedder = %(embedder)s
                    AND m.embedding IS NOT NULL
                    AND (m.expires_at IS NULL OR m.expires_at > %(now)s)
                  ORDER BY distance LIMIT %(k)s) c
            WHERE 1 - c.distance >= %(min_similarity)s) s
        WHERE t.quota > 0) r
    WHERE rank <= quota){touch}
SELECT id, tier, content, similarity, score FROM hits ORDER BY tier, score DESC, distance"""

# Folded into the recall statement when the caller wants access stats updated at read time.
_RECALL_TOUCH = """,
touched AS (UPDATE memories SET accessed_at = %(now)s, access_count = access_count + 1
            WHERE id IN (SELECT id FROM hits) AND user_id = %(user)s)"""


class MemoryStore:
    def __init__(self, db: Database, embeddings: CachedEmbeddings, settings: Settings) -> None:
        self.db = db
        self.embeddings = embeddings
        self.settings = settings
        self.params = RankingParams(
            half_life_days=settings.memory_recency_half_life_days,
            recency_floor=settings.memory_recency_floor,
            frequency_weight=settings.memory_frequency_weight,
            frequency_cap=settings.memory_frequency_cap,
        )
        self._recall_sql = _RECALL.format(touch="")
        self._recall_touch_sql = _RECALL.format(touch=_RECALL_TOUCH)

    @classmethod
    async def open(cls, db: Database, embeddings: CachedEmbeddings, settings: Settings) -> MemoryStore:
        return cls(db, embeddings, settings)

    def expiry(self, tier: Tier, now: datetime) -> datetime | None:
        return now + timedelta(days=self.settings.task_memory_ttl_days) if tier == "task" else None

    # --- statements (also run inside the chat write-back's transaction) ------------------------

    def add_statement(
        self,
        user_id: uuid.UUID,
        tier: Tier,
        content: str,
        metadata: dict[str, Any] | None,
        vector: Sequence[float] | None,
        *,
        now: datetime,
        memory_id: uuid.UUID,
        unless: str = "false",
    ) -> Statement:
        """Merge-or-insert of one memory (its result row is `(id, merged)`), or, without a
        vector, a plain insert that waits for `settle_statement`."""
        params: dict[str, Any] = {
            "id": memory_id,
            "user": user_id,
            "tier": tier,
            "content": content,
            "embedder": self.embeddings.name,
            "meta": _json(metadata or {}),
            "now": now,
            "expires": self.expiry(tier, now),
        }
        if vector is None:
            return _ADD_WITHOUT_VECTOR, params
        params |= {"vec": vector_text(vector), "threshold": self.settings.memory_merge_threshold}
        return _ADD.format(unless=unless), params

    def touch_statement(
        self, user_id: uuid.UUID, memory_ids: Sequence[uuid.UUID], now: datetime, *, unless: str = "false"
    ) -> Statement:
        """Access stats of recalled memories (owner-filtered)."""
        return (
            f"""UPDATE memories SET accessed_at = %(now)s, access_count = access_count + 1
                WHERE id = ANY(%(ids)s) AND user_id = %(user)s AND NOT ({unless})""",
            {"now": now, "ids": list(memory_ids), "user": user_id},
        )

    def waiting_statement(self, user_id: uuid.UUID, limit: int = 16) -> Statement:
        """The user's memories still waiting for a vector (oldest first)."""
        return (
            """SELECT id, content FROM memories
               WHERE user_id = %(user)s AND embedding IS NULL
               ORDER BY created_at LIMIT %(limit)s""",
            {"user": user_id, "limit": limit},
        )

    def settle_statement(
        self, user_id: uuid.UUID, memory_id: uuid.UUID, vector: Sequence[float], now: datetime
    ) -> Statement:
        return _SETTLE, {
            "id": memory_id,
            "user": user_id,
            "vec": vector_text(vector),
            "embedder": self.embeddings.name,
            "now": now,
            "threshold": self.settings.memory_merge_threshold,
        }

    # --- one call, one statement --------------------------------------------------------------

    async def add(
        self,
        user_id: uuid.UUID,
        tier: Tier,
        content: str,
        metadata: dict[str, Any] | None = None,
        *,
        now: datetime,
        memory_id: uuid.UUID | None = None,
    ) -> tuple[str, bool]:
        """Store a memory; returns (id, merged). A memory whose cosine similarity to one of the
        same user and tier exceeds MEMORY_MERGE_THRESHOLD is merged into it, not duplicated.
        `memory_id` makes a retried write idempotent."""
        vector = await self.embeddings.aembed_query(content)
        sql, params = self.add_statement(
            user_id, tier, content, metadata, vector, now=now, memory_id=memory_id or uuid.uuid4()
        )
        row = await self.db.fetchrow(sql, params)
        assert row is not None
        return str(row["id"]), bool(row["merged"])

    def recall_statement(
        self,
        user_id: uuid.UUID,
        vector: Sequence[float],
        now: datetime,
        quotas: dict[str, int],
        *,
        touch: bool,
    ) -> Statement:
        """The one recall statement: rows (id, tier, content, similarity, score), tier by tier."""
        s, p = self.settings, self.params
        return (self._recall_touch_sql if touch else self._recall_sql), {
            "vec": vector_text(vector),
            "user": user_id,
            "embedder": self.embeddings.name,
            "now": now,
            "k": s.memory_candidates_per_tier,
            "min_similarity": s.memory_min_similarity,
            "q_personal": quotas.get("personal", 0),
            "q_project": quotas.get("project", 0),
            "q_task": quotas.get("task", 0),
            "floor": p.recency_floor,
            "half_life": p.half_life_days,
            "weight": p.frequency_weight,
            "cap": p.frequency_cap,
        }

    async def retrieve(
        self,
        user_id: uuid.UUID,
        query: str,
        *,
        now: datetime,
        quotas: dict[str, int] | None = None,
        touch: bool = True,
    ) -> dict[str, list[MemoryHit]]:
        """Per tier: candidates by similarity (filtered by user in the query), ranked by
        similarity x recency x frequency, cut to the tier's quota; one statement. `touch`
        updates the hits' access stats in that same statement (the chat graph passes False and
        updates them in its write-back instead, keeping the read path read-only)."""
        vector = await self.embeddings.aembed_query(query)
        sql, params = self.recall_statement(
            user_id, vector, now, quotas or self.settings.memory_quotas, touch=touch
        )
        result: dict[str, list[MemoryHit]] = {t: [] for t in TIERS}
        for r in await self.db.fetch(sql, params):
            result[r["tier"]].append(
                MemoryHit(
                    id=str(r["id"]),
                    tier=r["tier"],
                    content=r["content"],
                    similarity=round(r["similarity"], 4),
                    score=round(r["score"], 4),
                )
            )
        return result

    async def list(
        self, user_id: uuid.UUID, tier: Tier | None, limit: int, now: datetime
    ) -> list[dict[str, Any]]:
        return await self.db.fetch(
            """SELECT id, tier, content, metadata, created_at, accessed_at, access_count, expires_at
               FROM memories
               WHERE user_id = %s AND (%s::text IS NULL OR tier = %s)
                 AND (expires_at IS NULL OR expires_at > %s)
               ORDER BY created_at DESC LIMIT %s""",
            (user_id, tier, tier, now, limit),
        )

    async def delete(self, user_id: uuid.UUID, memory_id: uuid.UUID) -> None:
        if not await self.db.execute(
            "DELETE FROM memories WHERE id = %s AND user_id = %s", (memory_id, user_id)
        ):
            raise NotFound("memory not found")

    async def forget(self, user_id: uuid.UUID, memory_ids: builtins.list[uuid.UUID]) -> int:
        """Delete these memories of the user if they exist (a rolled-back turn's)."""
        return await self.db.execute(
            "DELETE FROM memories WHERE id = ANY(%s) AND user_id = %s", (memory_ids, user_id)
        )
