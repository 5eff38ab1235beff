from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from api.deps import CurrentUser, Runs
from api.runs import named_events, output
from api.schemas import ChatRequest, ChatResponse
from api.sse import named, sse
from api.turns import turn, turn_body

router = APIRouter(prefix="/api/v1/chat", tags=["chat"])


@router.post("", response_model=ChatResponse)
async def chat(body: ChatRequest, user: CurrentUser, engine: Runs) -> dict:
    record = await engine.run(turn(user, body.thread_id, body.message))
    return turn_body(record.thread_id, output(record))


@router.post("/stream", response_class=EventSourceResponse)
async def chat_stream(body: ChatRequest, user: CurrentUser, engine: Runs) -> EventSourceResponse:
    """SSE: `metadata`, a `step` per node (running, then ok or degraded), `token`s of the reply,
    then `complete` (the /chat body) or `error`. The turn is a run: a client that disconnects
    does not cancel it, and `GET /api/v1/runs/{run_id}/stream` follows it from any process."""
    record = await engine.submit(turn(user, body.thread_id, body.message))  # 404/409/429 first

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield named("metadata", {"thread_id": record.thread_id, "run_id": str(record.id)})
        async for event in named_events(
            engine, record.id, complete=lambda r: turn_body(r.thread_id, output(r))
        ):
            yield event

    return sse(events())
