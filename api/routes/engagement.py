"""Narrative beats, weekly insights and nudges (the seed's cross-epic workflows)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder

from api.deps import CurrentUser, Graphs, Svc
from api.schemas import BeatRequest, InsightRequest
from api.turns import user_context
from graphs.runs import invoke

router = APIRouter(prefix="/api/v1", tags=["narrative", "insights", "nudges"])
Limit = Annotated[int, Query(ge=1, le=200)]


async def _run(
    graphs: Graphs, name: str, svc: Svc, user: CurrentUser, inputs: dict[str, Any]
) -> dict[str, Any]:
    """These workflows keep their results in their own tables, keyed so a re-run writes nothing
    twice: each run gets a fresh thread and checkpoints only at the end (durability "exit")."""
    ctx = user_context(user, svc, f"{name}:{uuid.uuid4()}")
    return jsonable_encoder(await invoke(graphs[name], inputs, ctx, durability="exit"))


@router.post("/narrative/beats")
async def create_beat(
    body: BeatRequest, user: CurrentUser, svc: Svc, graphs: Graphs, response: Response
) -> dict:
    """The next story beat for a goal: 201 when written now, 200 when this trigger's beat existed."""
    await svc.goals.get(user.id, body.goal_id)  # 404 before anything runs
    # One beat at a time per goal: a concurrent request then finds this one's beat instead of
    # paying for a second premium story.
    async with svc.db.thread_lock(f"narrative:{body.goal_id}"):
        out = await _run(graphs, "narrative_beat", svc, user, {"goal_id": str(body.goal_id)})
    response.status_code = 201 if out.get("created") else 200
    return out


@router.get("/narrative/beats")
async def list_beats(
    user: CurrentUser, svc: Svc, goal_id: uuid.UUID | None = None, limit: Limit = 20
) -> list[dict]:
    return jsonable_encoder(await svc.narrative.list_beats(user.id, goal_id=goal_id, limit=limit))


@router.get("/narrative/quests")
async def list_quests(user: CurrentUser, svc: Svc) -> list[dict]:
    """Hidden quests this user has unlocked."""
    return jsonable_encoder(await svc.narrative.list_unlocks(user.id))


@router.post("/insights/weekly")
async def weekly_insight(
    user: CurrentUser, svc: Svc, graphs: Graphs, response: Response, body: InsightRequest | None = None
) -> dict:
    """This (or the given) ISO week's insight; a highlight reel when DCI >= 0.8 or streak >= 7."""
    out = await _run(graphs, "weekly_insights", svc, user, {"week": body.week if body else None})
    response.status_code = 201 if out.get("created") else 200
    return out


@router.get("/insights")
async def list_insights(user: CurrentUser, svc: Svc, limit: Limit = 20) -> list[dict]:
    return jsonable_encoder(await svc.insights.list(user.id, limit))


@router.post("/nudges/plan")
async def plan_nudge(user: CurrentUser, svc: Svc, graphs: Graphs) -> dict:
    """For the calling user: the nudge scheduled for today, or why there is none."""
    return await _run(graphs, "personalized_nudge", svc, user, {})


@router.get("/nudges")
async def list_nudges(user: CurrentUser, svc: Svc, limit: Limit = 50) -> list[dict]:
    return jsonable_encoder(await svc.nudges.list(user.id, limit))
