"""Delight's web client contract (DOMAIN.md), exactly: POST starts a turn and answers at once,
the EventSource stream carries plain `data:` JSON events, history lists conversations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from api.deps import Broker, CurrentUser, Graphs, StreamUser, Svc
from api.schemas import CompanionAccepted, CompanionChatRequest
from api.sse import plain, sse
from api.turns import Event, open_thread, run_turn, turn_usage
from services.users import as_iso

router = APIRouter(prefix="/api/v1/companion", tags=["companion"])

# How long the stream waits for a turn that another API process is running, polling Postgres.
_FOREIGN_WAIT_S = 120.0


@router.post("/chat", response_model=CompanionAccepted)
async def companion_chat(
    body: CompanionChatRequest, user: CurrentUser, svc: Svc, graphs: Graphs, broker: Broker
) -> CompanionAccepted:
    thread_id = await open_thread(svc, user, body.conversation_id)

    async def work(emit: callable) -> dict:  # type: ignore[valid-type]
        def tokens_only(event: Event) -> None:
            if event.get("type") == "token":
                emit({"type": "token", "content": event["content"]})

        turn = await run_turn(graphs["chat"], svc, user, thread_id, body.message, on_event=tokens_only)
        return {"usage": turn_usage(turn, svc.llm.model_name("cheap"))}

    broker.start(thread_id, work)
    return CompanionAccepted(conversation_id=thread_id)


@router.get("/stream/{conversation_id}", response_class=EventSourceResponse)
async def companion_stream(
    conversation_id: str, user: StreamUser, svc: Svc, broker: Broker
) -> EventSourceResponse:
    await svc.threads.require_owned(conversation_id, user.id)
    turn = broker.get(conversation_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        if turn is not None:
            async for event in turn.follow():
                yield plain(event)
            return
        # Not started by this process: wait for the thread's reply in Postgres, send it whole.
        async for event in _reply_from_db(svc, conversation_id):
            yield plain(event)

    return sse(events())


async def _reply_from_db(svc: Svc, thread_id: str) -> AsyncIterator[Event]:
    deadline = asyncio.get_running_loop().time() + _FOREIGN_WAIT_S
    while True:
        row = await svc.db.fetchrow(
            "SELECT role, content FROM chat_messages WHERE thread_id = %s ORDER BY created_at DESC LIMIT 1",
            (thread_id,),
        )
        if row is not None and row["role"] == "assistant":
            yield {"type": "token", "content": row["content"]}
            yield {"type": "complete"}
            return
        if asyncio.get_running_loop().time() > deadline:
            yield {"type": "error", "message": "no reply for this conversation yet"}
            return
        await asyncio.sleep(0.25)


@router.get("/history")
async def companion_history(
    user: CurrentUser, svc: Svc, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, list[dict]]:
    """`{"conversations": [{id, created_at, updated_at, messages: [{role, content, timestamp}]}]}`,
    newest first: the client continues `conversations[0]`."""
    rows = await svc.threads.recent_with_messages(user.id, limit)
    return {
        "conversations": [
            {
                "id": r["id"],
                "created_at": as_iso(r["created_at"]),
                "updated_at": as_iso(r["updated_at"]),
                "messages": r["messages"],
            }
            for r in rows
            if _is_conversation(r["id"])
        ]
    }


def _is_conversation(thread_id: str) -> bool:
    """Chat conversations have uuid ids; workflow runs live on prefixed threads (`run:...`)."""
    try:
        uuid.UUID(thread_id)
    except ValueError:
        return False
    return True
