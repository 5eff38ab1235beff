"""Threads: the caller's own (rows of `threads`, the same the Delight routes write), their state
from the Postgres checkpointer (through the thread's graph), its history and updates. Another
user's thread, and any checkpoint of it, answers 404."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from langchain_core.runnables import RunnableConfig
from langgraph.errors import InvalidUpdateError
from langgraph.graph.state import CompiledStateGraph
from pydantic import Field

from api.agent.common import (
    CallerDep,
    ThreadsDep,
    json,
    owned_thread,
    refuse,
    state_body,
    thread_body,
    valid_uuid,
    workflow_of,
)
from api.agent.models import (
    MAX_OFFSET,
    PAGINATION,
    AgentBody,
    Bool,
    Flag,
    Int,
    JsonObject,
    Text,
    Thread,
    ThreadFields,
    ThreadId,
    ThreadState,
    ThreadStateUpdateResponse,
    documented,
    not_served,
)
from api.deps import Graphs, Runs, Svc
from engine.wire import checkpoint_ref
from services.threads import ThreadStore

router = APIRouter(tags=["agent: threads"])

Status = Literal["idle", "busy", "interrupted", "error"]
ThreadField = Literal[
    "thread_id",
    "created_at",
    "updated_at",
    "state_updated_at",
    "metadata",
    "config",
    "status",
    "values",
    "interrupts",
]
THREAD_FIELDS: tuple[str, ...] = get_args(ThreadField)


NoTtl = Annotated[dict[str, Any] | None, not_served("empty object", "threads are kept until deleted")]
NoValues = Annotated[dict[str, Any] | None, not_served("empty object", "search by state values")]


class ThreadCreate(AgentBody):
    thread_id: ThreadId | None = None
    metadata: JsonObject | None = None
    if_exists: Literal["raise", "do_nothing"] | None = None
    ttl: NoTtl = None
    supersteps: Annotated[list[Any] | None, not_served("empty list", "update the state instead")] = None


class ThreadSearch(AgentBody):
    ids: list[ThreadId] | None = None
    metadata: JsonObject | None = None
    values: NoValues = None
    status: Status | None = None
    limit: Int = Field(10, ge=1, le=1000)
    offset: Int = Field(0, ge=0, le=MAX_OFFSET)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[ThreadField] | None = None
    extract: Annotated[dict[str, str] | None, not_served("empty object", "extracting values")] = None


class ThreadCount(AgentBody):
    metadata: JsonObject | None = None
    values: NoValues = None
    status: Status | None = None


class ThreadPatch(AgentBody):
    metadata: JsonObject | None = None
    ttl: NoTtl = None


class CheckpointRef(AgentBody):
    thread_id: Text | None = Field(None, description="This thread's id, if given.")
    checkpoint_ns: Text = ""
    checkpoint_id: Text | None = None
    checkpoint_map: JsonObject | None = None


class StateUpdate(AgentBody):
    values: JsonObject | None = None
    as_node: str | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: Text | None = None


class StateAt(AgentBody):
    checkpoint: CheckpointRef
    subgraphs: Bool = False


class HistorySearch(AgentBody):
    limit: Int = Field(10, ge=1, le=1000)
    before: CheckpointRef | None = None
    metadata: JsonObject | None = None
    checkpoint: CheckpointRef | None = None


def unsupported(**fields: Any) -> None:
    """A field this service does not serve is refused by name, never dropped."""
    for name, value in fields.items():
        if value:
            raise refuse(name, "not supported by this service")


def graph_filter(
    metadata: dict[str, Any] | None, *, strict: bool = False
) -> tuple[dict[str, Any] | None, str | None]:
    """`graph_id` / `assistant_id` in thread metadata are the thread's graph (a column). In a
    filter an unknown graph matches nothing; set on a thread (`strict`) it is a 422."""
    if not metadata:
        return metadata, None
    rest = {k: v for k, v in metadata.items() if k not in ("graph_id", "assistant_id")}
    graphs = set()
    for key in ("graph_id", "assistant_id"):
        if key in metadata:
            try:
                graphs.add(workflow_of(str(metadata[key])))
            except HTTPException:
                if strict:
                    raise refuse(f"metadata.{key}", "no such graph or assistant") from None
                return rest, ""  # no thread has graph ""
    if len(graphs) > 1:
        if strict:
            raise refuse("metadata", "graph_id and assistant_id name different graphs")
        return rest, ""
    return rest, next(iter(graphs), None)


def config_at(thread_id: str, ref: CheckpointRef | None, checkpoint_id: str | None = None) -> RunnableConfig:
    """A checkpoint of the caller's thread, never another thread's (the checkpointer looks
    checkpoints up by thread id first)."""
    conf: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if ref is not None:
        if ref.thread_id is not None and ref.thread_id != thread_id:
            # Another thread's checkpoint is not in this one (the same answer as an unknown id).
            raise HTTPException(
                404, f"Checkpoint of thread {ref.thread_id!r} not found in thread {thread_id}"
            )
        conf["checkpoint_ns"] = ref.checkpoint_ns
        if ref.checkpoint_id:
            conf["checkpoint_id"] = ref.checkpoint_id
        if ref.checkpoint_map:
            conf["checkpoint_map"] = ref.checkpoint_map
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def graph_of(graphs: dict[str, CompiledStateGraph], row: dict[str, Any]) -> CompiledStateGraph | None:
    return graphs.get(row["graph_id"]) if row.get("graph_id") else None


async def state_of(graphs: dict[str, CompiledStateGraph], row: dict[str, Any]) -> Any:
    graph = graph_of(graphs, row)
    if graph is None:
        return None
    return await graph.aget_state({"configurable": {"thread_id": row["id"]}})


async def with_values(
    graphs: dict[str, CompiledStateGraph], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    states = await asyncio.gather(*(state_of(graphs, row) for row in rows))
    return [thread_body(row, state) for row, state in zip(rows, states, strict=True)]


@router.post("/threads", response_model=Thread, responses=documented(409))
async def create_thread(body: ThreadCreate, caller: CallerDep, store: ThreadsDep, graphs: Graphs) -> Response:
    unsupported(ttl=body.ttl, supersteps=body.supersteps)
    thread_id = valid_uuid(body.thread_id, "thread ID") if body.thread_id is not None else None
    metadata, graph = graph_filter(body.metadata or {}, strict=True)
    thread_id = thread_id or str(uuid.uuid4())
    row = await store.create(thread_id, caller.user.id, metadata or {}, graph)
    if row is None:
        existing = await store.get(thread_id, caller.user.id)
        if existing is None or body.if_exists != "do_nothing":
            raise HTTPException(409, f"Thread {thread_id} already exists")
        return json(thread_body(existing, await state_of(graphs, existing)))
    return json(thread_body(row))


@router.post(
    "/threads/search",
    response_model=list[ThreadFields],
    responses={**documented(), 200: {"description": "The caller's matching threads.", "headers": PAGINATION}},
)
async def search_threads(
    body: ThreadSearch, caller: CallerDep, store: ThreadsDep, graphs: Graphs
) -> Response:
    unsupported(values=body.values, extract=body.extract)
    metadata, graph = graph_filter(body.metadata)
    ids = [valid_uuid(i, "thread ID") for i in body.ids] if body.ids is not None else None
    rows = await store.search(
        caller.user.id,
        metadata=metadata,
        graph_id=graph,
        status=body.status,
        ids=ids,
        limit=body.limit + 1,
        offset=body.offset,
        sort_by=body.sort_by or "created_at",
        sort_order=body.sort_order or "desc",
    )
    more, rows = len(rows) > body.limit, rows[: body.limit]
    if body.select and not {"values", "interrupts"} & set(body.select):
        found = [thread_body(row) for row in rows]
    else:
        found = await with_values(graphs, rows)
    if body.select:
        found = [{k: t[k] for k in body.select} for t in found]
    headers = {"X-Pagination-Total": str(body.offset + len(rows) + (1 if more else 0))}
    if more:
        headers["X-Pagination-Next"] = str(body.offset + len(rows))
    return json(found, headers=headers)


@router.post("/threads/count", response_model=int, responses=documented())
async def count_threads(body: ThreadCount, caller: CallerDep, store: ThreadsDep) -> Response:
    unsupported(values=body.values)
    metadata, graph = graph_filter(body.metadata)
    return json(await store.count(caller.user.id, metadata=metadata, graph_id=graph, status=body.status))


@router.get("/threads/{thread_id}", response_model=Thread, responses=documented(404))
async def get_thread(thread_id: ThreadId, caller: CallerDep, store: ThreadsDep, graphs: Graphs) -> Response:
    row = await owned_thread(store, thread_id, caller.user)
    return json(thread_body(row, await state_of(graphs, row)))


@router.patch("/threads/{thread_id}", response_model=Thread, responses=documented(404))
async def patch_thread(
    thread_id: ThreadId, body: ThreadPatch, caller: CallerDep, store: ThreadsDep, graphs: Graphs
) -> Response:
    unsupported(ttl=body.ttl)
    row = await owned_thread(store, thread_id, caller.user)
    metadata, graph = graph_filter(body.metadata or {}, strict=True)
    if graph is not None and row["graph_id"] not in (None, graph):
        raise refuse("metadata.graph_id", f"this thread's graph is {row['graph_id']}; it cannot change")
    row = await store.patch(row["id"], caller.user.id, metadata or {}, graph) or row
    return json(thread_body(row, await state_of(graphs, row)))


@router.delete("/threads/{thread_id}", status_code=204, responses=documented(404))
async def delete_thread(
    thread_id: ThreadId, caller: CallerDep, store: ThreadsDep, svc: Svc, engine: Runs
) -> Response:
    """The thread, its runs (active ones are rolled back first), checkpoints and transcript."""
    row = await owned_thread(store, thread_id, caller.user)
    for run in await svc.runs.for_thread(row["id"], limit=1000):
        if not run.done:
            await engine.cancel(run.id, "rollback", wait=True)
    await svc.checkpointer.adelete_thread(row["id"])
    await store.delete(row["id"], caller.user.id)
    return Response(status_code=204)


async def _state(
    graphs: dict[str, CompiledStateGraph],
    row: dict[str, Any],
    config: RunnableConfig | None,
    subgraphs: bool,
) -> Response:
    """The state of the caller's thread `row` (found first: another's thread is 404 whatever the
    checkpoint asked for)."""
    graph = graph_of(graphs, row)
    if graph is None:  # no run yet: an empty state, as `langgraph dev` answers
        return json({"values": {}, "next": [], "tasks": [], "metadata": None, "created_at": None,
                     "checkpoint": None, "parent_checkpoint": None, "interrupts": [],
                     "checkpoint_id": None, "parent_checkpoint_id": None})  # fmt: skip
    config = config or {"configurable": {"thread_id": row["id"]}}
    snap = await graph.aget_state(config, subgraphs=subgraphs)
    wanted = config.get("configurable", {}).get("checkpoint_id")
    if wanted and snap.created_at is None:
        raise HTTPException(404, f"Checkpoint {wanted} not found in thread {row['id']}")
    return json(state_body(snap))


@router.get("/threads/{thread_id}/state", response_model=ThreadState, responses=documented(404))
async def get_state(
    thread_id: ThreadId,
    caller: CallerDep,
    store: ThreadsDep,
    graphs: Graphs,
    subgraphs: Annotated[Flag, Query()] = False,
) -> Response:
    row = await owned_thread(store, thread_id, caller.user)
    return await _state(graphs, row, None, subgraphs)


@router.get(
    "/threads/{thread_id}/state/{checkpoint_id}", response_model=ThreadState, responses=documented(404)
)
async def get_state_at(
    thread_id: ThreadId,
    checkpoint_id: str,
    caller: CallerDep,
    store: ThreadsDep,
    graphs: Graphs,
    subgraphs: Annotated[Flag, Query()] = False,
) -> Response:
    row = await owned_thread(store, thread_id, caller.user)
    return await _state(graphs, row, config_at(row["id"], None, checkpoint_id), subgraphs)


@router.post("/threads/{thread_id}/state/checkpoint", response_model=ThreadState, responses=documented(404))
async def post_state_at(
    thread_id: ThreadId, body: StateAt, caller: CallerDep, store: ThreadsDep, graphs: Graphs
) -> Response:
    row = await owned_thread(store, thread_id, caller.user)
    return await _state(graphs, row, config_at(row["id"], body.checkpoint), body.subgraphs)


@router.post(
    "/threads/{thread_id}/state", response_model=ThreadStateUpdateResponse, responses=documented(404, 409)
)
async def update_state(
    thread_id: ThreadId, body: StateUpdate, caller: CallerDep, store: ThreadsDep, graphs: Graphs, svc: Svc
) -> Response:
    """A new checkpoint with `values` applied as if `as_node` had written them (LangGraph's
    `update_state`). Refused while a run is pending or running on the thread."""
    row = await owned_thread(store, thread_id, caller.user)
    graph = graph_of(graphs, row)
    if graph is None:
        raise HTTPException(409, f"Thread {row['id']} has no graph yet: start a run on it first")
    unknown = sorted(set(body.values or {}) - set(graph.stream_channels_list))
    if unknown:
        raise refuse("values", f"{unknown} are not state keys of graph {row['graph_id']}")
    if body.as_node is not None and body.as_node not in graph.nodes:
        raise refuse("as_node", f"{body.as_node!r} is not a node of graph {row['graph_id']}")
    if any(not r.done for r in await svc.runs.for_thread(row["id"], limit=1000)):
        raise HTTPException(409, f"Thread {row['id']} has a pending or running run")
    config = config_at(row["id"], body.checkpoint, body.checkpoint_id)
    try:
        updated = await graph.aupdate_state(config, body.values, as_node=body.as_node)
    except InvalidUpdateError as err:
        raise refuse("values", str(err)) from None
    snap = await graph.aget_state({"configurable": {"thread_id": row["id"]}})
    await store.settle_status(row["id"], caller.user.id, "interrupted" if snap.interrupts else "idle")
    return json({"checkpoint": checkpoint_ref(updated)})


async def _history(
    store: ThreadStore,
    graphs: dict[str, CompiledStateGraph],
    caller: CallerDep,
    thread_id: ThreadId,
    limit: int,
    before: CheckpointRef | None,
    metadata: dict[str, Any] | None,
    checkpoint: CheckpointRef | None,
) -> Response:
    row = await owned_thread(store, thread_id, caller.user)
    graph = graph_of(graphs, row)
    if graph is None:
        return json([])
    config = config_at(row["id"], checkpoint)
    config.get("configurable", {}).pop("checkpoint_id", None)
    states = [
        state_body(s)
        async for s in graph.aget_state_history(
            config, limit=limit, before=config_at(row["id"], before) if before else None, filter=metadata
        )
    ]
    return json(states)


@router.get("/threads/{thread_id}/history", response_model=list[ThreadState], responses=documented(404))
async def get_history(
    thread_id: ThreadId,
    caller: CallerDep,
    store: ThreadsDep,
    graphs: Graphs,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    before: Annotated[str | None, Query(description="A checkpoint id")] = None,
) -> Response:
    ref = CheckpointRef(checkpoint_id=before) if before else None
    return await _history(store, graphs, caller, thread_id, limit, ref, None, None)


@router.post("/threads/{thread_id}/history", response_model=list[ThreadState], responses=documented(404))
async def post_history(
    thread_id: ThreadId, body: HistorySearch, caller: CallerDep, store: ThreadsDep, graphs: Graphs
) -> Response:
    return await _history(
        store, graphs, caller, thread_id, body.limit, body.before, body.metadata, body.checkpoint
    )
