from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from langchain_core.runnables import RunnableConfig

from api.deps import CurrentUser, Graphs, Svc
from api.errors import responses
from api.schemas import ThreadCheckpoint, ThreadState

router = APIRouter(prefix="/api/v1/threads", tags=["threads"])


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    from fastapi.encoders import jsonable_encoder

    out = dict(values)
    out["messages"] = [
        {"id": m.id, "role": "user" if m.type == "human" else "assistant", "content": m.text}
        for m in values.get("messages", [])
    ]
    return jsonable_encoder(out)


@router.get("/{thread_id}/state", response_model=ThreadState, responses=responses(404))
async def thread_state(thread_id: uuid.UUID, user: CurrentUser, svc: Svc, graphs: Graphs) -> dict:
    await svc.threads.require_owned(str(thread_id), user.id)
    snap = await graphs["chat"].aget_state({"configurable": {"thread_id": str(thread_id)}})
    return {
        "thread_id": str(thread_id),
        "values": _jsonable(snap.values),
        "next": list(snap.next),
        "checkpoint_id": snap.config.get("configurable", {}).get("checkpoint_id"),
        "created_at": snap.created_at,
    }


@router.get("/{thread_id}/history", response_model=list[ThreadCheckpoint], responses=responses(404))
async def thread_history(
    thread_id: uuid.UUID,
    user: CurrentUser,
    svc: Svc,
    graphs: Graphs,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[dict]:
    await svc.threads.require_owned(str(thread_id), user.id)
    config: RunnableConfig = {"configurable": {"thread_id": str(thread_id)}}
    return [
        {
            "checkpoint_id": snap.config["configurable"]["checkpoint_id"],
            "parent_checkpoint_id": (snap.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
            "step": snap.metadata.get("step") if snap.metadata else None,
            "source": snap.metadata.get("source") if snap.metadata else None,
            "next": list(snap.next),
            "created_at": snap.created_at,
            "messages": len(snap.values.get("messages", [])),
        }
        async for snap in graphs["chat"].aget_state_history(config, limit=limit)
    ]
