from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from api.deps import CurrentUser, Runs, Svc
from api.errors import responses
from api.runs import for_user, named_events, output
from api.schemas import Decomposition, GoalCreate, GoalCreated, GoalDetail, GoalOut, GoalPatch
from api.sse import named, sse

router = APIRouter(prefix="/api/v1", tags=["goals"])


@router.post("/goals", status_code=201, response_model=GoalCreated)
async def create_goal(body: GoalCreate, user: CurrentUser, engine: Runs) -> dict:
    """Runs goal_creation: the goal, the emotion behind it, similar past goals, and the id of the
    decomposition run that starts in the background (follow it at /api/v1/runs/{id}/stream)."""
    inputs = {
        "goal_id": str(uuid.uuid4()),
        "title": body.title,
        "description": body.description,
        "value_category": body.value_category,
        "target_date": body.target_date.isoformat() if body.target_date else None,
    }
    out = output(await engine.run(for_user(user, "goal_creation", inputs)))
    return {
        "goal": out["goal"],
        "emotion": out.get("emotion"),
        "similar_goals": out.get("similar_goals", []),
        "decomposition_run_id": out.get("decomposition_run_id"),
        "degraded": out.get("degraded", []),
    }


@router.get("/goals", response_model=list[GoalOut])
async def list_goals(
    user: CurrentUser, svc: Svc, status: Literal["active", "paused", "completed", "archived"] | None = None
) -> list[dict]:
    return jsonable_encoder(await svc.goals.list(user.id, status))


@router.get("/goals/{goal_id}", response_model=GoalDetail, responses=responses(404))
async def get_goal(goal_id: uuid.UUID, user: CurrentUser, svc: Svc) -> dict:
    goal = await svc.goals.get(user.id, goal_id)
    plan = await svc.goals.plan(goal_id)
    return jsonable_encoder({**goal.model_dump(), "milestones": plan["milestones"]})


@router.patch("/goals/{goal_id}", response_model=GoalOut, responses=responses(404))
async def patch_goal(goal_id: uuid.UUID, body: GoalPatch, user: CurrentUser, svc: Svc) -> dict:
    changes = body.model_dump(include=body.model_fields_set)
    return jsonable_encoder((await svc.goals.update(user.id, goal_id, changes)).model_dump())


@router.delete("/goals/{goal_id}", response_model=GoalOut, responses=responses(404))
async def archive_goal(goal_id: uuid.UUID, user: CurrentUser, svc: Svc) -> dict:
    """Goals are archived, never deleted: their missions and progress stay meaningful."""
    return jsonable_encoder((await svc.goals.update(user.id, goal_id, {"status": "archived"})).model_dump())


@router.post("/goals/{goal_id}/decompose", response_model=Decomposition, response_model_exclude_unset=True)
async def decompose(goal_id: uuid.UUID, user: CurrentUser, svc: Svc, engine: Runs) -> dict:
    await svc.goals.get(user.id, goal_id)  # 404 before anything is written
    record = await engine.run(for_user(user, "goal_decomposition", {"goal_id": str(goal_id)}))
    return {"run_id": str(record.id), **output(record)}


@router.post("/goals/{goal_id}/decompose/stream", response_class=EventSourceResponse)
async def decompose_stream(
    goal_id: uuid.UUID, user: CurrentUser, svc: Svc, engine: Runs
) -> EventSourceResponse:
    """SSE: `metadata` {run_id, goal_id}, `step` per node, `milestone` as each milestone's
    missions are planned, then `complete` (the result) or `error`."""
    await svc.goals.get(user.id, goal_id)
    record = await engine.submit(for_user(user, "goal_decomposition", {"goal_id": str(goal_id)}))

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield named("metadata", {"run_id": str(record.id), "goal_id": str(goal_id)})
        async for event in named_events(
            engine, record.id, complete=lambda r: {"run_id": str(r.id), **output(r)}
        ):
            yield event

    return sse(events())
