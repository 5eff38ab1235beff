from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from fastapi.encoders import jsonable_encoder

from api.deps import CurrentUser, Graphs, Svc
from api.schemas import MissionComplete, ProcessRequest
from api.turns import user_context
from domain.missions import priority_triad
from graphs.runs import invoke
from nodes.context import Context

router = APIRouter(prefix="/api/v1", tags=["missions"])
Status = Literal["pending", "in_progress", "completed", "deferred", "archived"]


def _context(user: CurrentUser, svc: Svc, kind: str) -> Context:
    return user_context(user, svc, f"{kind}:{uuid.uuid4()}")


@router.get("/missions")
async def list_missions(
    user: CurrentUser,
    svc: Svc,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict]:
    return jsonable_encoder(await svc.missions.list(user.id, status, limit))


@router.get("/missions/triad")
async def triad(user: CurrentUser, svc: Svc) -> dict:
    """One high-, one medium- and one low-energy pending mission, highest priority first."""
    missions = priority_triad(await svc.missions.list(user.id, "pending", limit=500))
    missing = sorted({"high", "medium", "low"} - {m.energy_level for m in missions})
    return jsonable_encoder({"missions": missions, "missing_levels": missing})


@router.get("/missions/next")
async def next_mission(
    user: CurrentUser,
    svc: Svc,
    graphs: Graphs,
    feeling: Annotated[str | None, Query(min_length=1, max_length=1000)] = None,
) -> dict:
    """adaptive_mission: `{path, reason, missions, ...}` from how the user feels and what they did."""
    out = await invoke(
        graphs["adaptive_mission"],
        {"feeling": feeling},
        _context(user, svc, "adaptive"),
        durability="exit",
    )
    return jsonable_encoder(out)


@router.post("/missions/process")
async def process_missions(body: ProcessRequest, user: CurrentUser, svc: Svc, graphs: Graphs) -> dict:
    out = await invoke(
        graphs["process_missions"],
        {"mission_ids": [str(m) for m in dict.fromkeys(body.mission_ids)]},
        _context(user, svc, "process"),
    )
    return jsonable_encoder(out)


async def _transition(
    user: CurrentUser, svc: Svc, mission_id: uuid.UUID, action: str, minutes: int | None = None
) -> dict:
    mission = await svc.missions.transition(
        user.id, mission_id, action, now=datetime.now(UTC), minutes=minutes
    )
    return jsonable_encoder(mission)


@router.post("/missions/{mission_id}/start")
async def start(mission_id: uuid.UUID, user: CurrentUser, svc: Svc) -> dict:
    return await _transition(user, svc, mission_id, "start")


@router.post("/missions/{mission_id}/complete")
async def complete(
    mission_id: uuid.UUID,
    user: CurrentUser,
    svc: Svc,
    body: Annotated[MissionComplete | None, Body()] = None,
) -> dict:
    """Completion records a progress event with the minutes spent (default: the estimate)."""
    return await _transition(user, svc, mission_id, "complete", body.minutes if body else None)


@router.post("/missions/{mission_id}/skip")
async def skip(mission_id: uuid.UUID, user: CurrentUser, svc: Svc) -> dict:
    return await _transition(user, svc, mission_id, "skip")


@router.get("/progress")
async def progress(user: CurrentUser, svc: Svc) -> dict:
    """Streak (user's timezone), DCI with its four terms, zone, and the window's counts."""
    return (await svc.progress.recent(user.id, user.timezone, datetime.now(UTC))).model_dump()
