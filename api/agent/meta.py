"""`GET /ok` and `GET /info` (what Studio and the SDKs ask first; no credentials needed), and the
Agent Server features this service does not serve, each answering a 404 that names it."""

from __future__ import annotations

import langgraph.version
from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from api.agent.common import CallerDep
from api.agent.models import Info, Ok

router = APIRouter(tags=["agent: meta"])


@router.get("/ok", response_model=Ok)
async def ok() -> dict:
    return {"ok": True}


@router.get("/info", response_model=Info)
async def info() -> dict:
    """The features served: no crons, store or LangSmith (README, "Agent Server API")."""
    return {
        "version": "0.1.0",
        "langgraph_py_version": langgraph.version.__version__,
        "flags": {"assistants": True, "crons": False, "langsmith": False},
        "host": {"kind": "delight", "project_id": None, "revision_id": None, "tenant_id": None},
    }


NOT_SERVED = {
    "crons": "crons are not served by this service: its jobs run on its own schedule",
    "store": "the long-term store is not served by this service: memories live in /api/v1/memories",
    "thread_stream": "thread streams are not served: join a run's stream "
    "(GET /threads/{thread_id}/runs/{run_id}/stream)",
    "prune": "pruning threads is not served: DELETE /threads/{thread_id}",
    "copy": "copying threads is not served: start a run from a checkpoint to branch a thread",
    "bulk_cancel": "bulk cancel is not served: POST /threads/{thread_id}/runs/{run_id}/cancel",
}

_ALL = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _not_served(feature: str):
    async def refuse(caller: CallerDep) -> Response:
        raise HTTPException(404, NOT_SERVED[feature])

    return refuse


for feature, paths in {
    "crons": ("/runs/crons", "/runs/crons/{rest:path}", "/threads/{thread_id}/runs/crons"),
    "store": ("/store/{rest:path}",),
    "thread_stream": ("/threads/{thread_id}/stream",),
    "prune": ("/threads/prune",),
    "copy": ("/threads/{thread_id}/copy",),
    "bulk_cancel": ("/runs/cancel",),
}.items():
    for path in paths:
        router.add_api_route(path, _not_served(feature), methods=_ALL, include_in_schema=False)
