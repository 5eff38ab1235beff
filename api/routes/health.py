from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Svc

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(svc: Svc) -> JSONResponse:
    db_ok = await svc.db.ping()
    body = {
        "status": "ok" if db_ok else "degraded",
        "database": {"status": "ok" if db_ok else "unavailable", "kind": svc.db.kind},
        "model": {"kind": svc.llm.kind, "description": svc.llm.description},
        "embedder": svc.embeddings.name,
    }
    return JSONResponse(body, status_code=200 if db_ok else 503)
