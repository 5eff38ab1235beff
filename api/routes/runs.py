"""A user's runs (goal decomposition started in the background, any turn or workflow run): state,
and the live stream from any API process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from api.deps import CurrentUser, Runs, StreamUser, Svc
from api.errors import responses
from api.runs import last_event_id, named_events
from api.schemas import RunOut
from api.sse import named, sse
from services.runs import RunRecord

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])


def run_body(r: RunRecord) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "workflow": r.workflow,
        "thread_id": r.thread_id,
        "status": r.status,
        "attempt": r.attempt,
        "input": r.input,
        "result": r.output,
        "error": r.error,
        "created_at": r.created_at,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "updated_at": r.updated_at,
    }


@router.get("/{run_id}", response_model=RunOut, responses=responses(404))
async def get_run(run_id: uuid.UUID, user: CurrentUser, svc: Svc) -> dict:
    """`status`: pending, running, success, error, timeout or interrupted; `result` once it succeeded."""
    return run_body(await svc.runs.get(run_id, user.id))


@router.get("/{run_id}/stream", response_class=EventSourceResponse, responses=responses(404))
async def stream_run(
    run_id: uuid.UUID,
    user: StreamUser,
    svc: Svc,
    engine: Runs,
    last_event: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """SSE: `metadata` {run_id, thread_id, workflow}, the run's events from the one after
    `Last-Event-ID` (`step`s, and the workflow's own: `token`, `milestone`...), then `complete`
    {result} or `error` {message}. Works for a run executing in any process."""
    record = await svc.runs.get(run_id, user.id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield named(
            "metadata", {"run_id": str(record.id), "thread_id": record.thread_id, "workflow": record.workflow}
        )
        async for event in named_events(
            engine, record.id, after=last_event_id(last_event), complete=lambda r: {"result": r.output}
        ):
            yield event

    return sse(events())
