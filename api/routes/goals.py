from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from api.deps import CurrentUser, Graphs, Svc
from api.schemas import GoalCreate, GoalPatch
from api.sse import named, sse
from api.turns import public_message, user_context
from graphs.runs import Event, execute, invoke

router = APIRouter(prefix="/api/v1", tags=["goals"])


@router.post("/goals", status_code=201)
async def create_goal(body: GoalCreate, user: CurrentUser, svc: Svc, graphs: Graphs) -> dict:
    """Runs goal_creation: the goal, the emotion behind it, similar past goals, and the id of the
    decomposition run that starts in the background."""
    goal_id = str(uuid.uuid4())
    ctx = user_context(user, svc, f"goal:{goal_id}")
    inputs = {
        "goal_id": goal_id,
        "title": body.title,
        "description": body.description,
        "value_category": body.value_category,
        "target_date": body.target_date.isoformat() if body.target_date else None,
    }
    out = await invoke(graphs["goal_creation"], inputs, ctx)
    return jsonable_encoder(
        {
            "goal": out["goal"],
            "emotion": out.get("emotion"),
            "similar_goals": out.get("similar_goals", []),
            "decomposition_run_id": out.get("decomposition_run_id"),
            "degraded": out.get("degraded", []),
        }
    )


@router.get("/goals")
async def list_goals(
    user: CurrentUser, svc: Svc, status: Literal["active", "paused", "completed", "archived"] | None = None
) -> list[dict]:
    return jsonable_encoder(await svc.goals.list(user.id, status))


@router.get("/goals/{goal_id}")
async def get_goal(goal_id: uuid.UUID, user: CurrentUser, svc: Svc) -> dict:
    goal = await svc.goals.get(user.id, goal_id)
    plan = await svc.goals.plan(goal_id)
    return jsonable_encoder({**goal.model_dump(), "milestones": plan["milestones"]})


@router.patch("/goals/{goal_id}")
async def patch_goal(goal_id: uuid.UUID, body: GoalPatch, user: CurrentUser, svc: Svc) -> dict:
    changes = body.model_dump(include=body.model_fields_set)
    return jsonable_encoder((await svc.goals.update(user.id, goal_id, changes)).model_dump())


@router.delete("/goals/{goal_id}")
async def archive_goal(goal_id: uuid.UUID, user: CurrentUser, svc: Svc) -> dict:
    """Goals are archived, never deleted: their missions and progress stay meaningful."""
    return jsonable_encoder((await svc.goals.update(user.id, goal_id, {"status": "archived"})).model_dump())


@router.post("/goals/{goal_id}/decompose")
async def decompose(goal_id: uuid.UUID, user: CurrentUser, svc: Svc, graphs: Graphs) -> dict:
    await svc.goals.get(user.id, goal_id)  # 404 before anything is written
    run_id = uuid.uuid4()
    out = await execute(
        graphs["goal_decomposition"],
        svc,
        workflow="goal_decomposition",
        user_id=str(user.id),
        payload={"goal_id": str(goal_id)},
        run_id=run_id,
    )
    return jsonable_encoder({"run_id": str(run_id), **out})


@router.post("/goals/{goal_id}/decompose/stream", response_class=EventSourceResponse)
async def decompose_stream(
    goal_id: uuid.UUID, user: CurrentUser, svc: Svc, graphs: Graphs
) -> EventSourceResponse:
    """SSE: `metadata` {run_id, goal_id}, `step` per node, `milestone` as each milestone's
    missions are planned, then `complete` (the result) or `error`."""
    await svc.goals.get(user.id, goal_id)
    run_id = uuid.uuid4()

    async def events() -> AsyncIterator[ServerSentEvent]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        yield named("metadata", {"run_id": str(run_id), "goal_id": str(goal_id)})
        task = asyncio.create_task(
            execute(
                graphs["goal_decomposition"],
                svc,
                workflow="goal_decomposition",
                user_id=str(user.id),
                payload={"goal_id": str(goal_id)},
                run_id=run_id,
                on_event=queue.put_nowait,
            )
        )
        task.add_done_callback(lambda _: queue.put_nowait(None))
        while (event := await queue.get()) is not None:
            yield named(event.pop("type"), event)
        try:
            yield named("complete", jsonable_encoder({"run_id": str(run_id), **task.result()}))
        except Exception as err:
            yield named("error", {"message": public_message(err)})

    return sse(events())


@router.get("/runs/{run_id}")
async def get_run(run_id: uuid.UUID, user: CurrentUser, svc: Svc) -> dict:
    return jsonable_encoder(await svc.runs.get(user.id, run_id))
