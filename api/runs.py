"""The HTTP side of runs for Delight's own routes: a finished run as a response (or the typed error
it ended with), and a run's events as the SSE the routes document."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette.sse import ServerSentEvent

from core.errors import (
    Busy,
    Conflict,
    DelightError,
    Failed,
    Invalid,
    ModelOutputInvalid,
    NotFound,
    Unavailable,
)
from engine import Engine, Event, RunRequest
from engine.events import END, dumps
from services.runs import RunRecord
from services.users import User

_ERRORS: dict[str, type[DelightError]] = {
    cls.__name__: cls for cls in (NotFound, Invalid, Conflict, Busy, ModelOutputInvalid, Unavailable)
}


def failure(record: RunRecord) -> DelightError:
    """The typed error a run that did not succeed answers with."""
    if record.status == "interrupted":
        return Conflict(record.error or "the run was interrupted by a newer one")
    if record.status == "timeout" or record.error_type == "Timeout":
        return Unavailable(record.error or "the run took too long, try again")
    cls = _ERRORS.get(record.error_type or "")
    return cls(record.error or "the run failed") if cls else Failed(record.error or "the run failed")


def output(record: RunRecord) -> dict[str, Any]:
    if record.status != "success":
        raise failure(record)
    return record.output or {}


def public_message(record: RunRecord) -> str:
    return failure(record).message


async def named_events(
    engine: Engine,
    run_id: uuid.UUID,
    *,
    after: int = 0,
    complete: Callable[[RunRecord], Any],
) -> AsyncIterator[ServerSentEvent]:
    """A run's events as named SSE: each custom event under its `type` (step, token, milestone...)
    with the run's event number as the SSE id, then `complete` (`complete(record)`) or `error`."""
    async for event in engine.events(run_id, after):
        if event.name == "custom" and isinstance(event.data, dict) and "type" in event.data:
            data = {k: v for k, v in event.data.items() if k != "type"}
            yield ServerSentEvent(data=dumps(data), event=event.data["type"], id=str(event.seq))
        elif event.name == END:
            yield await _last(engine, run_id, event, complete)


async def _last(
    engine: Engine, run_id: uuid.UUID, event: Event, complete: Callable[[RunRecord], Any]
) -> ServerSentEvent:
    record = await engine.wait(run_id)
    if record.status == "success":
        return ServerSentEvent(data=dumps(complete(record)), event="complete", id=str(event.seq))
    return ServerSentEvent(data=dumps({"message": public_message(record)}), event="error", id=str(event.seq))


def last_event_id(value: str | None) -> int:
    """The SSE id a reconnecting client sends back (our event numbers); anything else: from 0."""
    return int(value) if value and value.isdigit() else 0


def for_user(user: User, workflow: str, inputs: dict[str, Any], **options: Any) -> RunRequest:
    """A run of `workflow` for the calling user, on a new thread unless `thread_id` is given."""
    return RunRequest(workflow=workflow, input=inputs, user=user.id, timezone=user.timezone, **options)
