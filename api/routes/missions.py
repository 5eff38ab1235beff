from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from fastapi.encoders import jsonable_encoder

from api.deps import CurrentUser, Runs, Svc
from api.errors import responses
from api.runs import for_user, output
from api.schemas import (
    AdaptiveMissions,
    MissionComplete,
    MissionOut,
    ProcessRequest,
    ProgressOut,
    Triad,
    WorkflowOut,
)
from domain.missions import priority_triad

router = APIRouter(prefix="/api/v1", tags=["missions"])
Status = Literal["pending", "in_progress", "completed", "deferred", "archived"]


@router.get("/missions", response_model=list[MissionOut])
async def list_missions(
    user: CurrentUser,
    svc: Svc,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict]:
    return jsonable_encoder(await svc.missions.list(user.id, status, limit))


@router.get("/missions/triad", response_model=Triad)
async def triad(user: CurrentUser, svc: Svc) -> dict:
    """One high-, one medium- and one low-energy pending mission, highest priority first."""
    missions = priority_triad(await svc.missions.list(user.id, "pending", limit=500))
    missing = sorted({"high", "medium", "low"} - {m.energy_level for m in missions})
    return jsonable_encoder({"missions": missions, "missing_levels": missing})


@router.get("/missions/next", response_model=AdaptiveMissions, response_model_exclude_unset=True)
async def next_mission(
    user: CurrentUser,
    engine: Runs,
    feeling: Annotated[str | None, Query(min_length=1, max_length=1000)] = None,
) -> dict:
    """adaptive_mission: `{path, reason, missions, ...}` from how the user feels and what they did."""
    return output(await engine.run(for_user(user, "adaptive_mission", {"feeling": feeling})))


@router.post("/missions/process", response_model=WorkflowOut, response_model_exclude_unset=True)
async def process_missions(body: ProcessRequest, user: CurrentUser, engine: Runs) -> dict:
    inputs = {"mission_ids": [str(m) for m in dict.fromkeys(body.mission_ids)]}
    return output(await engine.run(for_user(user, "process_missions", inputs)))


async def _transition(
    user: CurrentUser, svc: Svc, mission_id: uuid.UUID, action: str, minutes: int | None = None
) -> dict:
    mission = await svc.missions.transition(
        user.id, mission_id, action, now=datetime.now(UTC), minutes=minutes
    )
    return jsonable_encoder(mission)


@router.post("/missions/{mission_id}/start", response_model=MissionOut, responses=responses(404, 409))
async def start(mission_id: uuid.UUID, user: CurrentUser, svc: Svc) -> dict:
    return await _transition(user, svc, mission_id, "start")


@router.post("/missions/{mission_id}/complete", response_model=MissionOut, responses=responses(404, 409))
async def complete(
    mission_id: uuid.UUID,
    user: CurrentUser,
    svc: Svc,
    body: Annotated[MissionComplete | None, Body()] = None,
) -> dict:
    """Completion records a progress event with the minutes spent (default: the estimate)."""
    return await _transition(user, svc, mission_id, "complete", body.minutes if body else None)


@router.post("/missions/{mission_id}/skip", response_model=MissionOut, responses=responses(404, 409))
async def skip(mission_id: uuid.UUID, user: CurrentUser, svc: Svc) -> dict:
    return await _transition(user, svc, mission_id, "skip")


@router.get("/progress", response_model=ProgressOut)
async def progress(user: CurrentUser, svc: Svc) -> dict:
    """Streak (user's timezone), DCI with its four terms, zone, and the window's counts."""
    return (await svc.progress.recent(user.id, user.timezone, datetime.now(UTC))).model_dump()
