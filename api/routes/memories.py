from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, Svc
from api.errors import responses
from api.schemas import MemoryCreate, MemoryCreated, MemoryItem
from state.schemas import Tier

router = APIRouter(prefix="/api/v1/memories", tags=["memories"])


@router.get("", response_model=list[MemoryItem])
async def list_memories(
    user: CurrentUser,
    svc: Svc,
    tier: Tier | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[MemoryItem]:
    now = datetime.now(UTC)
    if q is None:
        rows = await svc.memory.list(user.id, tier, limit, now)
        return [
            MemoryItem(
                id=str(r["id"]),
                tier=r["tier"],
                content=r["content"],
                metadata=r["metadata"],
                created_at=r["created_at"].isoformat(),
                accessed_at=r["accessed_at"].isoformat(),
                access_count=r["access_count"],
            )
            for r in rows
        ]
    quotas = {t: (limit if tier in (None, t) else 0) for t in ("personal", "project", "task")}
    hits = await svc.memory.retrieve(user.id, q, now=now, quotas=quotas, touch=False)
    ranked = sorted((h for hs in hits.values() for h in hs), key=lambda h: h.score, reverse=True)
    return [MemoryItem(id=h.id, tier=h.tier, content=h.content, score=h.score) for h in ranked[:limit]]


@router.post("", response_model=MemoryCreated, status_code=201)
async def create_memory(body: MemoryCreate, user: CurrentUser, svc: Svc) -> MemoryCreated:
    mid, merged = await svc.memory.add(
        user.id,
        "personal",
        body.content,
        {"tags": body.tags, "source": "api"},
        now=datetime.now(UTC),
    )
    return MemoryCreated(id=mid, merged=merged)


@router.delete("/{memory_id}", status_code=204, responses=responses(404))
async def delete_memory(memory_id: uuid.UUID, user: CurrentUser, svc: Svc) -> Response:
    await svc.memory.delete(user.id, memory_id)
    return Response(status_code=204)
