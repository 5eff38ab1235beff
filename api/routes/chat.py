from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from api.deps import CurrentUser, Graphs, Svc
from api.schemas import ChatRequest, ChatResponse
from api.sse import named, sse
from api.turns import Event, open_thread, public_message, run_turn

router = APIRouter(prefix="/api/v1/chat", tags=["chat"])
_running: set[asyncio.Task[dict]] = set()


@router.post("", response_model=ChatResponse)
async def chat(body: ChatRequest, user: CurrentUser, svc: Svc, graphs: Graphs) -> dict:
    thread_id = await open_thread(svc, user, body.thread_id)
    return await run_turn(graphs["chat"], svc, user, thread_id, body.message)


@router.post("/stream", response_class=EventSourceResponse)
async def chat_stream(body: ChatRequest, user: CurrentUser, svc: Svc, graphs: Graphs) -> EventSourceResponse:
    """SSE: `metadata`, a `step` per finished node, `token`s of the reply, then `complete`
    (the /chat body) or `error`."""
    thread_id = await open_thread(svc, user, body.thread_id)  # 404 before the stream starts
    run_id = str(uuid.uuid4())

    async def events() -> AsyncIterator[ServerSentEvent]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        yield named("metadata", {"thread_id": thread_id, "run_id": run_id})
        task = asyncio.create_task(
            run_turn(
                graphs["chat"],
                svc,
                user,
                thread_id,
                body.message,
                run_id=run_id,
                on_event=queue.put_nowait,
            )
        )
        # A client that disconnects mid-turn does not cancel the turn: it finishes and is
        # saved, so the next turn sees it. Keep a reference until then.
        _running.add(task)
        task.add_done_callback(_running.discard)
        task.add_done_callback(lambda _: queue.put_nowait(None))
        while (event := await queue.get()) is not None:
            kind = event.pop("type")
            yield named(kind, event)
        try:
            yield named("complete", task.result())
        except Exception as err:
            yield named("error", {"message": public_message(err)})

    return sse(events())
