"""Three-tier memory on langchain-postgres' PGVectorStore (table `memories`, migration 0001).

PGVectorStore owns the vector insert and the similarity query; the filter it builds puts the
user, tier, embedder and expiry inside the SQL. Ranking, quotas, near-duplicate merging and access
stats are ours (domain/memory.py for the formula)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from langchain_core.documents import Document
from langchain_postgres import PGEngine, PGVectorStore

from core.errors import NotFound
from core.settings import Settings
from domain.memory import RankingParams, cosine_similarity_from_distance, rank_score
from services.db import Database
from services.embeddings import CachedEmbeddings
from state.schemas import TIERS, MemoryHit, Tier

_METADATA_COLUMNS = [
    "user_id",
    "tier",
    "embedder",
    "created_at",
    "accessed_at",
    "access_count",
    "expires_at",
]


class MemoryStore:
    def __init__(
        self, db: Database, store: PGVectorStore, embeddings: CachedEmbeddings, settings: Settings
    ) -> None:
        self.db = db
        self.store = store
        self.embeddings = embeddings
        self.settings = settings
        self.params = RankingParams(
            half_life_days=settings.memory_recency_half_life_days,
            recency_floor=settings.memory_recency_floor,
            frequency_weight=settings.memory_frequency_weight,
            frequency_cap=settings.memory_frequency_cap,
        )

    @classmethod
    async def open(cls, db: Database, embeddings: CachedEmbeddings, settings: Settings) -> MemoryStore:
        store = await PGVectorStore.create(
            PGEngine.from_engine(db.engine),
            embedding_service=embeddings,
            table_name="memories",
            id_column="id",
            content_column="content",
            embedding_column="embedding",
            metadata_columns=_METADATA_COLUMNS,
            metadata_json_column="metadata",
        )
        return cls(db, store, embeddings, settings)

    def _filter(self, user_id: uuid.UUID, tier: Tier, now: datetime) -> dict[str, Any]:
        return {
            "$and": [
                {"user_id": {"$eq": str(user_id)}},
                {"tier": {"$eq": tier}},
                # Vectors from another embedder live in another space: never compare them.
                {"embedder": {"$eq": self.embeddings.name}},
                {"$or": [{"expires_at": {"$exists": False}}, {"expires_at": {"$gt": now}}]},
            ]
        }

    async def _nearest(
        self, vector: list[float], user_id: uuid.UUID, tier: Tier, k: int, now: datetime
    ) -> list[tuple[Document, float]]:
        pairs = await self.store.asimilarity_search_with_score_by_vector(
            vector, k=k, filter=self._filter(user_id, tier, now)
        )
        return [(doc, cosine_similarity_from_distance(dist)) for doc, dist in pairs]

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
        `memory_id` makes a retried write idempotent (PGVectorStore upserts on id)."""
        vector = await self.embeddings.aembed_query(content)
        nearest = await self._nearest(vector, user_id, tier, 1, now)
        if nearest and nearest[0][1] > self.settings.memory_merge_threshold:
            doc = nearest[0][0]
            await self._merge(uuid.UUID(str(doc.id)), tier, doc.metadata, metadata or {}, now)
            return str(doc.id), True
        mid = memory_id or uuid.uuid4()
        expires = now + timedelta(days=self.settings.task_memory_ttl_days) if tier == "task" else None
        row = {
            "user_id": user_id,
            "tier": tier,
            "embedder": self.embeddings.name,
            "created_at": now,
            "accessed_at": now,
            "access_count": 0,
            "expires_at": expires,
            **(metadata or {}),
        }
        await self.store.aadd_embeddings([content], [vector], metadatas=[row], ids=[str(mid)])
        return str(mid), False

    async def _merge(
        self, mid: uuid.UUID, tier: Tier, old: dict[str, Any], new: dict[str, Any], now: datetime
    ) -> None:
        """Fold a repeated memory into the existing one: newer metadata wins, tags are united,
        the access count and (task tier) the expiry move forward."""
        merged = {k: v for k, v in old.items() if k not in _METADATA_COLUMNS} | new
        merged["tags"] = sorted(set(old.get("tags") or []) | set(new.get("tags") or []))
        expires = now + timedelta(days=self.settings.task_memory_ttl_days) if tier == "task" else None
        await self.db.execute(
            """UPDATE memories SET metadata = %s::jsonb, accessed_at = %s,
                   access_count = access_count + 1,
                   expires_at = CASE WHEN %s::timestamptz IS NULL THEN expires_at
                                     ELSE greatest(expires_at, %s::timestamptz) END
               WHERE id = %s""",
            (json.dumps(merged, default=str), now, expires, expires, mid),
        )

    async def retrieve(
        self,
        user_id: uuid.UUID,
        query: str,
        *,
        now: datetime,
        quotas: dict[str, int] | None = None,
        touch: bool = True,
    ) -> dict[str, list[MemoryHit]]:
        """Per tier: fetch candidates by similarity (filtered by user in the query), rank by
        similarity x recency x frequency, keep the tier's quota, update access stats."""
        quotas = quotas or self.settings.memory_quotas
        vector = await self.embeddings.aembed_query(query)
        tiers = [t for t in TIERS if quotas.get(t, 0) > 0]
        k = self.settings.memory_candidates_per_tier
        found = await asyncio.gather(*(self._nearest(vector, user_id, t, k, now) for t in tiers))
        result: dict[str, list[MemoryHit]] = {t: [] for t in TIERS}
        for tier, pairs in zip(tiers, found, strict=True):
            ranked = sorted(
                (
                    MemoryHit(
                        id=str(doc.id),
                        tier=tier,
                        content=doc.page_content,
                        similarity=round(sim, 4),
                        score=round(
                            rank_score(
                                sim,
                                doc.metadata["accessed_at"],
                                doc.metadata["access_count"],
                                now,
                                self.params,
                            ),
                            4,
                        ),
                    )
                    for doc, sim in pairs
                    if sim >= self.settings.memory_min_similarity
                ),
                key=lambda h: h.score,
                reverse=True,
            )
            result[tier] = ranked[: quotas[tier]]
        hits = [uuid.UUID(h.id) for hs in result.values() for h in hs]
        if touch and hits:
            await self.db.execute(
                """UPDATE memories SET accessed_at = %s, access_count = access_count + 1
                   WHERE id = ANY(%s) AND user_id = %s""",
                (now, hits, user_id),
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

    async def forget(self, user_id: uuid.UUID, memory_ids: list[uuid.UUID]) -> int:
        """Delete these memories of the user if they exist (a rolled-back turn's)."""
        return await self.db.execute(
            "DELETE FROM memories WHERE id = ANY(%s) AND user_id = %s", (memory_ids, user_id)
        )
