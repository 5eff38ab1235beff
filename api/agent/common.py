"""What the Agent Server routes share: the caller, the assistants (one per registered workflow),
id checks, owned threads, and the wire shapes of threads, runs and states as `langgraph dev`
sends them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from langgraph.types import StateSnapshot

from api.deps import authenticate
from engine.engine import describe
from engine.events import dumps
from engine.wire import checkpoint_ref
from graphs.registry import WORKFLOWS
from services.runs import RunRecord
from services.threads import ThreadStore
from services.users import User

# `langgraph dev` names a graph's assistant uuid5(this namespace, graph id): the same ids here.
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")

# Workflows that act on every user (or are the service's scheduled jobs): admins only, as on
# /api/v1/jobs.
ADMIN_ONLY = frozenset({"nightly_maintenance", "weekly_quests"})

_bearer = HTTPBearer(auto_error=False)


def assistant_id(workflow: str) -> str:
    return str(uuid.uuid5(NAMESPACE_GRAPH, workflow))


ASSISTANTS = {assistant_id(name): name for name in WORKFLOWS}


def workflow_of(assistant: str) -> str:
    """The workflow an assistant id (or a workflow name) names; 404 if none."""
    if assistant in WORKFLOWS:
        return assistant
    workflow = ASSISTANTS.get(assistant.lower())
    if workflow is None:
        raise HTTPException(404, f"assistant {assistant!r} not found; assistants: {', '.join(WORKFLOWS)}")
    return workflow


def refuse(field: str, message: str, where: str = "body") -> RequestValidationError:
    """A 422 naming the refused input, in the service's 422 body (`detail` and `errors`), as
    FastAPI's own validation answers it."""
    loc = (where, *field.split(".")) if field else (where,)
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message}])


def valid_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise HTTPException(422, f"Invalid {what}: must be a UUID") from None


@dataclass(frozen=True)
class Caller:
    user: User
    admin: bool


async def current_caller(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    """The same bearer tokens, and the same checks, as the rest of the API."""
    principal = await authenticate(request, creds.credentials if creds else None)
    user = await request.app.state.services.users.ensure(principal.subject)
    return Caller(user, principal.is_admin)


def thread_store(request: Request) -> ThreadStore:
    store = getattr(request.app.state, "agent_threads", None)
    if store is None:
        store = request.app.state.agent_threads = ThreadStore(request.app.state.services.db)
    return store


CallerDep = Annotated[Caller, Depends(current_caller)]
ThreadsDep = Annotated[ThreadStore, Depends(thread_store)]


async def owned_thread(store: ThreadStore, thread_id: str, user: User) -> dict[str, Any]:
    row = await store.get(valid_uuid(thread_id, "thread ID"), user.id)
    if row is None:
        raise HTTPException(404, f"Thread {thread_id} not found")
    return row


def json(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status_code, media_type="application/json", headers=headers)


def no_nul(value: Any, field: str) -> None:
    """Postgres text and jsonb cannot hold NUL: refuse it here, before anything is written."""
    if value is not None and b"\\u0000" in orjson.dumps(value, default=str):
        raise refuse(field, "NUL characters (\\u0000) are not accepted")


# --- wire shapes -----------------------------------------------------------------------------


def thread_metadata(row: dict[str, Any]) -> dict[str, Any]:
    """Stored metadata plus the thread's graph, as `langgraph dev` records it on a thread's run."""
    graph = row.get("graph_id")
    extra = {"graph_id": graph, "assistant_id": assistant_id(graph)} if graph else {}
    return {**(row.get("metadata") or {}), **extra}


def thread_body(row: dict[str, Any], state: StateSnapshot | None = None) -> dict[str, Any]:
    return {
        "thread_id": row["id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "state_updated_at": row["updated_at"],
        "metadata": thread_metadata(row),
        "config": {},
        "status": row["status"],
        "values": state.values if state is not None else {},
        "interrupts": (
            {t.id: [interrupt(i) for i in t.interrupts] for t in state.tasks if t.interrupts}
            if state is not None
            else {}
        ),
    }


def run_body(r: RunRecord) -> dict[str, Any]:
    kw = r.kwargs
    return {
        "run_id": str(r.id),
        "thread_id": r.thread_id,
        "assistant_id": assistant_id(r.workflow),
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "status": r.status,
        "metadata": r.metadata,
        "kwargs": {
            "input": r.input,
            "command": kw.get("command"),
            "config": {"recursion_limit": kw["recursion_limit"]} if kw.get("recursion_limit") else {},
            "context": {},
            "stream_mode": kw.get("stream_mode") or [],
            "interrupt_before": kw.get("interrupt_before"),
            "interrupt_after": kw.get("interrupt_after"),
            "webhook": None,
            "feedback_keys": None,
            "temporary": bool(kw.get("temporary")),
            "subgraphs": bool(kw.get("subgraphs")),
            "resumable": bool(kw.get("resumable")),
            "checkpoint_id": kw.get("checkpoint_id"),
            "durability": kw.get("durability"),
        },
        "multitask_strategy": r.multitask_strategy,
    }


def interrupt(i: Any) -> dict[str, Any]:
    return {"id": getattr(i, "id", None), "value": getattr(i, "value", i)}


def state_body(snap: StateSnapshot) -> dict[str, Any]:
    checkpoint = checkpoint_ref(snap.config)
    parent = checkpoint_ref(snap.parent_config)
    return {
        "values": snap.values,
        "next": list(snap.next),
        "tasks": [
            {
                "id": t.id,
                "name": t.name,
                "path": list(t.path),
                "error": _error(t.error),
                "interrupts": [interrupt(i) for i in t.interrupts],
                "checkpoint": t.state["configurable"] if isinstance(t.state, dict) else None,
                "state": state_body(t.state) if isinstance(t.state, StateSnapshot) else None,
                "result": t.result,
            }
            for t in snap.tasks
        ],
        "metadata": snap.metadata,
        "created_at": snap.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": [interrupt(i) for i in snap.interrupts],
        "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }


def _error(err: Any) -> Any:
    if err is None or not isinstance(err, BaseException):
        return err
    kind, message = describe(err)
    return {"error": kind, "message": message}
