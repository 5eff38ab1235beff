from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Svc
from api.errors import UNAVAILABLE_RETRY_S
from api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The database is unavailable (`degraded`)"}},
)
async def health(svc: Svc) -> JSONResponse:
    db_ok = await svc.db.ping()
    body = {
        "status": "ok" if db_ok else "degraded",
        "database": {"status": "ok" if db_ok else "unavailable", "kind": svc.db.kind},
        "model": {"kind": svc.llm.kind, "description": svc.llm.description},
        "embedder": svc.embeddings.name,
    }
    # A load balancer or client polling a degraded service waits as for any other 503.
    headers = None if db_ok else {"Retry-After": str(UNAVAILABLE_RETRY_S)}
    return JSONResponse(body, status_code=200 if db_ok else 503, headers=headers)
