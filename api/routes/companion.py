"""Delight's web client contract (DOMAIN.md), exactly: POST starts a turn and answers at once,
the EventSource stream carries plain `data:` JSON events, history lists conversations."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from api.deps import CurrentUser, Runs, StreamUser, Svc
from api.errors import responses
from api.runs import last_event_id, public_message
from api.schemas import CompanionAccepted, CompanionChatRequest, CompanionHistory
from api.sse import sse
from api.turns import turn, turn_usage
from engine.events import END, dumps
from services.chat_threads import as_iso

router = APIRouter(prefix="/api/v1/companion", tags=["companion"])


@router.post("/chat", response_model=CompanionAccepted)
async def companion_chat(body: CompanionChatRequest, user: CurrentUser, engine: Runs) -> CompanionAccepted:
    """The turn starts now (its run is recorded with the message before this answers), while the
    client opens its EventSource, on this process or any other."""
    record = await engine.submit(turn(user, body.conversation_id, body.message))
    return CompanionAccepted(conversation_id=record.thread_id)


@router.get("/stream/{conversation_id}", response_class=EventSourceResponse, responses=responses(404))
async def companion_stream(
    conversation_id: str,
    user: StreamUser,
    svc: Svc,
    engine: Runs,
    run_id: Annotated[uuid.UUID | None, Query(description="The turn to follow (default: the latest)")] = None,
    last_event: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """The conversation's latest turn (the one its POST started), live, from the event after
    `Last-Event-ID`: `{"type": "token", "content"}`..., then `{"type": "complete", "usage"}` or
    `{"type": "error", "message"}`."""
    await svc.threads.require_owned(conversation_id, user.id)
    run = await svc.runs.get(run_id, user.id) if run_id else await svc.runs.latest(conversation_id)
    if run is None or run.thread_id != conversation_id:
        raise HTTPException(404, "no turn on this conversation")
    model = svc.settings.chat_model

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for event in engine.events(run.id, last_event_id(last_event)):
            if event.name == "custom" and isinstance(event.data, dict) and event.data.get("type") == "token":
                yield ServerSentEvent(
                    data=dumps({"type": "token", "content": event.data["content"]}), id=str(event.seq)
                )
            elif event.name == END:
                record = await engine.wait(run.id)
                if record.status == "success":
                    data = {"type": "complete", "usage": turn_usage(record.output or {}, model)}
                else:
                    data = {"type": "error", "message": public_message(record)}
                yield ServerSentEvent(data=dumps(data), id=str(event.seq))

    return sse(events())


@router.get("/history", response_model=CompanionHistory, response_model_exclude_unset=True)
async def companion_history(
    user: CurrentUser, svc: Svc, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, list[dict]]:
    """`{"conversations": [{id, created_at, updated_at, messages: [{role, content, timestamp}]}]}`,
    newest first, chat threads only: the client continues `conversations[0]`."""
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
        ]
    }
