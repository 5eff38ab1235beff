"""Narrative beats, weekly insights and nudges (the seed's cross-epic workflows)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder

from api.deps import CurrentUser, Runs, Svc
from api.runs import for_user, output
from api.schemas import (
    BeatOut,
    BeatRequest,
    Created,
    InsightOut,
    InsightRequest,
    NudgeOut,
    QuestOut,
    WorkflowOut,
)
from services.runs import thread_for

router = APIRouter(prefix="/api/v1", tags=["narrative", "insights", "nudges"])
Limit = Annotated[int, Query(ge=1, le=200)]


@router.post(
    "/narrative/beats",
    response_model=Created,
    response_model_exclude_unset=True,
    status_code=201,
    responses={200: {"model": Created, "description": "This trigger's beat already existed"}},
)
async def create_beat(
    body: BeatRequest, user: CurrentUser, svc: Svc, engine: Runs, response: Response
) -> dict:
    """The next story beat for a goal: 201 when written now, 200 when this trigger's beat existed.
    A goal's beats are runs on the goal's own thread, so they take turns: a second request finds
    the first one's beat instead of paying for another premium story."""
    await svc.goals.get(user.id, body.goal_id)  # 404 before anything runs
    goal_id = str(body.goal_id)
    out = output(
        await engine.run(
            for_user(
                user, "narrative_beat", {"goal_id": goal_id}, thread_id=thread_for("narrative_beat", goal_id)
            )
        )
    )
    response.status_code = 201 if out.get("created") else 200
    return out


@router.get("/narrative/beats", response_model=list[BeatOut])
async def list_beats(
    user: CurrentUser, svc: Svc, goal_id: uuid.UUID | None = None, limit: Limit = 20
) -> list[dict]:
    return jsonable_encoder(await svc.narrative.list_beats(user.id, goal_id=goal_id, limit=limit))


@router.get("/narrative/quests", response_model=list[QuestOut])
async def list_quests(user: CurrentUser, svc: Svc) -> list[dict]:
    """Hidden quests this user has unlocked."""
    return jsonable_encoder(await svc.narrative.list_unlocks(user.id))


@router.post(
    "/insights/weekly",
    response_model=Created,
    response_model_exclude_unset=True,
    status_code=201,
    responses={200: {"model": Created, "description": "The week's insight already existed"}},
)
async def weekly_insight(
    user: CurrentUser, engine: Runs, response: Response, body: InsightRequest | None = None
) -> dict:
    """This (or the given) ISO week's insight; a highlight reel when DCI >= 0.8 or streak >= 7."""
    out = output(await engine.run(for_user(user, "weekly_insights", {"week": body.week if body else None})))
    response.status_code = 201 if out.get("created") else 200
    return out


@router.get("/insights", response_model=list[InsightOut])
async def list_insights(user: CurrentUser, svc: Svc, limit: Limit = 20) -> list[dict]:
    return jsonable_encoder(await svc.insights.list(user.id, limit))


@router.post("/nudges/plan", response_model=WorkflowOut, response_model_exclude_unset=True)
async def plan_nudge(user: CurrentUser, engine: Runs) -> dict:
    """For the calling user: the nudge scheduled for today, or why there is none."""
    return output(await engine.run(for_user(user, "personalized_nudge", {})))


@router.get("/nudges", response_model=list[NudgeOut])
async def list_nudges(user: CurrentUser, svc: Svc, limit: Limit = 50) -> list[dict]:
    return jsonable_encoder(await svc.nudges.list(user.id, limit))
