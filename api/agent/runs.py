"""Runs: every run is a run of the engine (engine/engine.py), for the caller, on one of their
threads (or a temporary one: the stateless routes). Background runs (`POST .../runs`), streamed
runs (SSE, each event's `id:` the engine's event number, so `Last-Event-ID` resumes), and waited
runs (the final values, whitespace sent every few seconds while waiting, as `langgraph dev`).
The run's context (user, timezone, clock) is the server's: a client's `context` and
`config.configurable` are refused, never read."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, get_args

import orjson
from fastapi import APIRouter, Body, Header, HTTPException, Query
from fastapi.responses import Response, StreamingResponse
from langgraph.graph.state import CompiledStateGraph
from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError, WithJsonSchema
from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from api.agent.common import (
    ADMIN_ONLY,
    Caller,
    CallerDep,
    ThreadsDep,
    json,
    no_nul,
    owned_thread,
    refuse,
    run_body,
    valid_uuid,
    workflow_of,
)
from api.agent.models import (
    MAX_OFFSET,
    RUN_RESULT,
    SSE,
    AgentBody,
    Bool,
    Flag,
    Float,
    JsonData,
    JsonObject,
    Run,
    RunFields,
    RunId,
    RunStatus,
    StreamMode,
    Text,
    ThreadId,
    documented,
    no_coercion,
    not_served,
)
from api.agent.threads import CheckpointRef
from api.deps import Graphs, Runs, Svc
from api.runs import last_event_id
from api.sse import NO_BUFFERING
from engine import Engine, RunRequest
from engine.events import END, ERROR, METADATA, dumps
from engine.wire import STREAM_MODES
from graphs.registry import WORKFLOWS
from services.runs import RunRecord
from services.threads import ThreadStore

router = APIRouter(tags=["agent: runs"])

MAX_RECURSION = 200
RunField = Literal[
    "run_id", "thread_id", "assistant_id", "created_at", "updated_at", "status", "metadata", "kwargs",
    "multitask_strategy",
]  # fmt: skip
KEEPALIVE_S = 5.0
_background: set[asyncio.Task[Any]] = set()  # cancels started by a client's disconnect


class RunCommand(AgentBody):
    resume: JsonData = None
    update: JsonObject | None = None
    goto: str | list[str] | None = None


SET_BY_SERVICE = "the service sets the run's user, thread, timezone and clock itself"
BodyModes = Annotated[
    str | list[str] | None,
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": list(get_args(StreamMode))},
                {"type": "array", "items": {"enum": list(get_args(StreamMode))}},
                {"type": "null"},
            ]
        }
    ),
]


class RunConfig(AgentBody):
    configurable: Annotated[dict[str, Any] | None, not_served("empty object", SET_BY_SERVICE)] = None
    recursion_limit: (
        Annotated[Annotated[int, Field(ge=1, le=MAX_RECURSION)], BeforeValidator(no_coercion)] | None
    ) = None
    tags: Annotated[list[str] | None, not_served("empty list", "run tags")] = None
    metadata: Annotated[dict[str, Any] | None, not_served("empty object", "use the run's `metadata`")] = None


class RunCreate(AgentBody):
    """A run, as the SDKs send it. Fields this service does not serve answer 422 by name."""

    assistant_id: str
    input: JsonData = None
    command: RunCommand | None = None
    metadata: JsonObject | None = None
    config: RunConfig | None = None
    context: Annotated[dict[str, Any] | None, not_served("empty object", SET_BY_SERVICE)] = None
    checkpoint_id: Text | None = None
    checkpoint: CheckpointRef | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    stream_mode: BodyModes = None
    stream_subgraphs: Bool | None = False
    stream_resumable: Bool | None = False
    multitask_strategy: Literal["reject", "rollback", "interrupt", "enqueue"] | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    checkpoint_during: Bool | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    webhook: Annotated[str | None, not_served("empty string", "webhooks")] = None
    feedback_keys: Annotated[list[str] | None, not_served("empty list", "LangSmith feedback")] = None
    after_seconds: Annotated[Float | None, not_served("zero", "delayed runs")] = None
    langsmith_tracer: Annotated[dict[str, Any] | None, not_served("empty object", "LangSmith tracing")] = None
    strict_resume: Annotated[Bool | None, not_served("false", "strict resume")] = None


# The same run, as each route takes it: the fields a route does not serve are documented as such.
STATELESS_ONLY = not_served("null", "applies to stateless runs (/runs/...) only")
STREAMED_ONLY = not_served("null", "applies to streamed and waited runs only")
NEW_THREAD = not_served("null", "a stateless run starts on a new thread")


class ThreadRunStream(RunCreate):
    """A streamed or waited run on a thread."""

    on_completion: Annotated[Literal["delete", "keep"] | None, STATELESS_ONLY] = None


class ThreadRunCreate(ThreadRunStream):
    """A background run on a thread."""

    on_disconnect: Annotated[Literal["cancel", "continue"] | None, STREAMED_ONLY] = None


class StatelessRunStream(RunCreate):
    """A streamed or waited run on a temporary thread."""

    checkpoint_id: Annotated[str | None, NEW_THREAD] = None
    checkpoint: Annotated[CheckpointRef | None, NEW_THREAD] = None


class StatelessRunCreate(StatelessRunStream):
    """A background run on a temporary thread."""

    on_disconnect: Annotated[Literal["cancel", "continue"] | None, STREAMED_ONLY] = None


# --- building a run from a request -------------------------------------------------------------


def _refuse(name: str, why: str = "") -> Exception:
    return refuse(name, f"not supported by this service{why}")


def _modes(
    value: str | list[str] | None, default: tuple[str, ...] = ("values",), where: str = "body"
) -> tuple[str, ...]:
    modes = [value] if isinstance(value, str) else list(value or default)
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown:
        raise refuse("stream_mode", f"{unknown} not supported; supported: {sorted(STREAM_MODES)}", where)
    return tuple(dict.fromkeys(modes))


def _nodes(graph: CompiledStateGraph, value: Any, field: str) -> Any:
    if value is None or value == "*":
        return value
    unknown = [n for n in value if n not in graph.nodes]
    if unknown:
        raise refuse(field, f"{unknown} are not nodes of this graph")
    return value


def _input(workflow: str, graph: CompiledStateGraph, value: Any) -> Any:
    """The input checked against the graph's input schema (keys, then types), so a bad input is a
    422 before anything is written, not a failed run."""
    if value is None:
        return None
    schema = graph.get_input_jsonschema()
    if not isinstance(value, dict):
        raise refuse("input", f"an object with {sorted(schema.get('properties', {}))}")
    unknown = sorted(set(value) - set(schema.get("properties", {})))
    if unknown:
        raise refuse(
            "input",
            f"{unknown} are not inputs of {workflow} (inputs: {sorted(schema.get('properties', {}))})",
        )
    if WORKFLOWS[workflow].normalize_input is None:  # else the workflow checks its input itself
        try:
            TypeAdapter(graph.builder.input_schema).validate_python(value)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise refuse("input", problems) from None
    return value


def _command(graph: CompiledStateGraph, cmd: RunCommand | None) -> dict[str, Any] | None:
    if cmd is None:
        return None
    no_nul(cmd.model_dump(), "command")
    if cmd.update is not None:
        unknown = sorted(set(cmd.update) - set(graph.stream_channels_list))
        if unknown:
            raise refuse("command.update", f"{unknown} are not state keys of this graph")
    _nodes(graph, [cmd.goto] if isinstance(cmd.goto, str) else cmd.goto, "command.goto")
    return {k: v for k, v in cmd.model_dump().items() if v is not None}


def _checkpoint(body: RunCreate, thread_id: str) -> str | None:
    ref = body.checkpoint
    if ref is None:
        return body.checkpoint_id
    if ref.thread_id not in (None, thread_id):
        raise refuse("checkpoint.thread_id", "not this thread")
    if ref.checkpoint_ns or ref.checkpoint_map:
        raise _refuse("checkpoint.checkpoint_ns (starting a run inside a subgraph)")
    return ref.checkpoint_id or body.checkpoint_id


def run_request(
    body: RunCreate,
    caller: Caller,
    graphs: dict[str, CompiledStateGraph],
    thread_id: str,
    *,
    new_thread: bool,
    background: bool,
    temporary: bool = False,
    extra_modes: tuple[str, ...] = (),
) -> RunRequest:
    """The engine's run for this request, every field checked: a field this service does not
    serve is refused by name, never dropped."""
    for name, value in (
        ("webhook", body.webhook),
        ("feedback_keys", body.feedback_keys),
        ("after_seconds", body.after_seconds),
        ("langsmith_tracer", body.langsmith_tracer),
        ("strict_resume", body.strict_resume),
        ("config.tags", body.config and body.config.tags),
        ("config.metadata", body.config and body.config.metadata),
    ):
        if value:
            raise _refuse(name)
    if body.config and body.config.configurable:
        raise refuse(
            "config.configurable",
            f"{sorted(body.config.configurable)} not accepted: {SET_BY_SERVICE}, and its graphs take "
            "no other values",
        )
    if body.context:
        raise refuse(
            "context",
            f"{sorted(body.context)} not accepted: the service sets the run's context "
            "(user, thread, timezone, clock) from your credentials and profile",
        )
    workflow = workflow_of(body.assistant_id)
    if workflow in ADMIN_ONLY and not caller.admin:
        raise HTTPException(403, f"{workflow} is a service job: admin role required")
    graph = graphs[workflow]
    if body.input is not None and body.command is not None:
        raise refuse("command", "input and command: give one (a command resumes or steers the thread)")
    command = _command(graph, body.command)
    if command and new_thread and "resume" in command:
        raise refuse("command.resume", "a new thread has nothing to resume")
    durability = body.durability or ("exit" if body.checkpoint_during is False else "async")
    return RunRequest(
        workflow=workflow,
        input=_input(workflow, graph, body.input),
        user=caller.user.id,
        timezone=caller.user.timezone,
        thread_id=thread_id,
        create_thread=new_thread,
        strategy=body.multitask_strategy or "enqueue",
        stream_mode=tuple(dict.fromkeys(_modes(body.stream_mode) + extra_modes)),
        subgraphs=bool(body.stream_subgraphs),
        durability=durability,
        checkpoint_id=_checkpoint(body, thread_id),
        command=command,
        interrupt_before=_nodes(graph, body.interrupt_before, "interrupt_before"),
        interrupt_after=_nodes(graph, body.interrupt_after, "interrupt_after"),
        metadata=body.metadata or {},
        thread_metadata=(body.metadata or {}) if new_thread else {},
        background=background,
        resumable=bool(body.stream_resumable),
        recursion_limit=body.config.recursion_limit if body.config else None,
        temporary=temporary,
    )


async def _thread_run(
    body: RunCreate,
    caller: Caller,
    store: ThreadStore,
    graphs: dict[str, CompiledStateGraph],
    thread_id: str,
    **options: Any,
) -> RunRequest:
    tid = valid_uuid(thread_id, "thread ID")
    if body.on_completion is not None:
        raise refuse("on_completion", "on_completion applies to stateless runs (/runs/...) only")
    row = await store.get(tid, caller.user.id)
    if row is None and body.if_not_exists != "create":
        raise HTTPException(404, f"Thread {thread_id} not found")
    req = run_request(body, caller, graphs, tid, new_thread=row is None, **options)
    if row is not None and row["graph_id"] not in (None, req.workflow):
        raise HTTPException(
            409,
            f"Thread {tid} belongs to graph {row['graph_id']}, not {req.workflow}: its state is that graph's",
        )
    if req.checkpoint_id and row is not None:
        snap = await graphs[req.workflow].aget_state(
            {"configurable": {"thread_id": tid, "checkpoint_ns": "", "checkpoint_id": req.checkpoint_id}}
        )
        if snap.created_at is None:
            raise HTTPException(404, f"Checkpoint {req.checkpoint_id} not found in thread {tid}")
    return req


def _stateless_run(
    body: RunCreate, caller: Caller, graphs: dict[str, CompiledStateGraph], **options: Any
) -> RunRequest:
    if body.checkpoint_id or body.checkpoint:
        raise refuse("checkpoint", "a stateless run starts on a new thread")
    return run_request(
        body,
        caller,
        graphs,
        str(uuid.uuid4()),
        new_thread=True,
        temporary=body.on_completion != "keep",
        **options,
    )


# --- answering: a run's record, its events, its result -------------------------------------------


def _locations(r: RunRecord, tail: str) -> dict[str, str]:
    base = f"/threads/{r.thread_id}/runs/{r.id}"
    return {"Location": f"{base}/{tail}", "Content-Location": base}


def _cancel_later(engine: Engine, run_id: uuid.UUID) -> None:
    async def cancel() -> None:
        try:
            await engine.cancel(run_id, "interrupt")
        except Exception:  # already gone: nothing to stop
            pass

    task = asyncio.ensure_future(cancel())
    _background.add(task)
    task.add_done_callback(_background.discard)


def _wanted(name: str, modes: tuple[str, ...]) -> bool:
    """Whether a joined stream restricted to `modes` passes this event (metadata and error always)."""
    base = name.split("|", 1)[0]
    if not modes or base in (METADATA, ERROR) or base in modes:
        return True
    return base.startswith("messages") and bool({"messages", "messages-tuple"} & set(modes))


def event_stream(
    engine: Engine,
    record: RunRecord,
    *,
    after: int = 0,
    modes: tuple[str, ...] = (),
    cancel_on_disconnect: bool = False,
) -> EventSourceResponse:
    """The run's events as `langgraph dev` streams them (`event:` the mode, `data:` its JSON),
    with the engine's event number as `id:`; the stream ends with the run (no event of its own)."""

    async def events() -> AsyncIterator[ServerSentEvent]:
        ended = False
        try:
            async for event in engine.events(record.id, after):
                if event.name == END:
                    break
                if _wanted(event.name, modes):
                    yield ServerSentEvent(data=event.json, event=event.name, id=str(event.seq))
            ended = True
        finally:
            if not ended and cancel_on_disconnect:
                _cancel_later(engine, record.id)

    return EventSourceResponse(events(), headers={**NO_BUFFERING, **_locations(record, "stream")}, ping=15)


async def result(engine: Engine, graphs: dict[str, CompiledStateGraph], record: RunRecord) -> Any:
    """What `wait` and `join` answer: the run's last `values` (with `__interrupt__` when it
    paused), `{"__error__": {error, message}}` when it failed, else the thread's values."""
    values: Any = None
    async for event in engine.events(record.id):
        if event.name == "values":
            values = event.data
        elif event.name == ERROR:
            return {"__error__": event.data}
    if values is not None:
        return values
    ended = await engine.wait(record.id)
    if ended.output is not None:
        return ended.output
    graph = graphs.get(record.workflow)
    if graph is None or not ended.thread_id:
        return {}
    return (await graph.aget_state({"configurable": {"thread_id": record.thread_id}})).values


def waited(
    engine: Engine,
    graphs: dict[str, CompiledStateGraph],
    record: RunRecord,
    *,
    cancel_on_disconnect: bool = False,
) -> StreamingResponse:
    """The result as JSON once the run ends; a newline every few seconds until then keeps proxies
    from closing the connection (JSON parsers skip leading whitespace)."""

    async def body() -> AsyncIterator[bytes]:
        task = asyncio.ensure_future(result(engine, graphs, record))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=KEEPALIVE_S)
                if done:
                    yield dumps(task.result()).encode()
                    return
                yield b"\n"
        finally:
            if not task.done():
                task.cancel()
                if cancel_on_disconnect:
                    _cancel_later(engine, record.id)

    return StreamingResponse(body(), media_type="application/json", headers=_locations(record, "join"))


async def _owned_run(svc: Svc, caller: Caller, thread_id: str, run_id: str) -> RunRecord:
    tid = valid_uuid(thread_id, "thread ID")
    record = await svc.runs.get(uuid.UUID(valid_uuid(run_id, "run ID")), caller.user.id)  # else 404
    if record.thread_id != tid:
        raise HTTPException(404, f"Run {run_id} not found")
    return record


def _parse_modes(values: list[str] | None) -> tuple[str, ...]:
    modes: list[str] = []
    for value in values or ():
        if not value:  # `stream_mode=` (a client's None): no restriction
            continue
        if value.startswith("["):
            try:
                modes += [str(m) for m in orjson.loads(value)]
            except orjson.JSONDecodeError:
                raise refuse("stream_mode", f"{value!r} is not a JSON list", "query") from None
        else:
            modes.append(value)
    return _modes(modes, default=(), where="query") if modes else ()


# --- thread runs --------------------------------------------------------------------------------

# What refusing a run can answer besides bad input: no such assistant or thread (404), an admin-only
# workflow (403), a busy thread or another graph's thread (409), a limit on runs (429).
RUN_ERRORS = documented(403, 404, 409, 429)
STREAMED: dict[int | str, dict[str, Any]] = {**RUN_ERRORS, 200: SSE}
WAITED: dict[int | str, dict[str, Any]] = {**RUN_ERRORS, 200: {"description": RUN_RESULT}}
Modes = Annotated[
    list[str] | None,
    Query(description="Stream modes to pass (repeated, or one JSON list); all when absent."),
    WithJsonSchema({"type": "array", "items": {"enum": list(get_args(StreamMode))}}),
]


@router.post("/threads/{thread_id}/runs/stream", response_class=EventSourceResponse, responses=STREAMED)
async def stream_run(
    thread_id: ThreadId,
    body: ThreadRunStream,
    caller: CallerDep,
    store: ThreadsDep,
    graphs: Graphs,
    engine: Runs,
) -> EventSourceResponse:
    req = await _thread_run(body, caller, store, graphs, thread_id, background=False)
    record = await engine.submit(req)
    return event_stream(engine, record, cancel_on_disconnect=body.on_disconnect == "cancel")


@router.post("/threads/{thread_id}/runs/wait", response_model=dict[str, Any], responses=WAITED)
async def wait_run(
    thread_id: ThreadId,
    body: ThreadRunStream,
    caller: CallerDep,
    store: ThreadsDep,
    graphs: Graphs,
    engine: Runs,
) -> StreamingResponse:
    req = await _thread_run(body, caller, store, graphs, thread_id, background=False, extra_modes=("values",))
    record = await engine.submit(req)
    return waited(engine, graphs, record, cancel_on_disconnect=body.on_disconnect == "cancel")


@router.post("/threads/{thread_id}/runs", response_model=Run, responses=RUN_ERRORS)
async def create_run(
    thread_id: ThreadId,
    body: ThreadRunCreate,
    caller: CallerDep,
    store: ThreadsDep,
    graphs: Graphs,
    engine: Runs,
) -> Response:
    if body.on_disconnect is not None:
        raise refuse("on_disconnect", "on_disconnect applies to streamed and waited runs only")
    req = await _thread_run(body, caller, store, graphs, thread_id, background=True)
    record = await engine.submit(req)
    return json(run_body(record), headers={"Content-Location": _locations(record, "")["Content-Location"]})


@router.get("/threads/{thread_id}/runs", response_model=list[RunFields], responses=documented(404))
async def list_runs(
    thread_id: ThreadId,
    caller: CallerDep,
    store: ThreadsDep,
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    status: Annotated[RunStatus | None, Query(), WithJsonSchema({"enum": list(get_args(RunStatus))})] = None,
    select: Annotated[
        list[RunField] | None,
        Query(description="The run fields to answer; all when absent."),
        WithJsonSchema({"type": "array", "items": {"enum": list(get_args(RunField))}}),
    ] = None,
) -> Response:
    row = await owned_thread(store, thread_id, caller.user)
    runs = [
        run_body(r) for r in await svc.runs.for_thread(row["id"], limit=limit, offset=offset, status=status)
    ]
    if select:
        runs = [{k: r[k] for k in select} for r in runs]
    return json(runs)


@router.get("/threads/{thread_id}/runs/{run_id}", response_model=Run, responses=documented(404))
async def get_run(thread_id: ThreadId, run_id: RunId, caller: CallerDep, svc: Svc) -> Response:
    return json(run_body(await _owned_run(svc, caller, thread_id, run_id)))


@router.get(
    "/threads/{thread_id}/runs/{run_id}/join",
    response_model=dict[str, Any],
    responses={**documented(404), 200: {"description": RUN_RESULT}},
)
async def join_run(
    thread_id: ThreadId,
    run_id: RunId,
    caller: CallerDep,
    svc: Svc,
    graphs: Graphs,
    engine: Runs,
    cancel_on_disconnect: Annotated[Flag, Query()] = False,
) -> StreamingResponse:
    record = await _owned_run(svc, caller, thread_id, run_id)
    return waited(engine, graphs, record, cancel_on_disconnect=cancel_on_disconnect)


@router.get(
    "/threads/{thread_id}/runs/{run_id}/stream",
    response_class=EventSourceResponse,
    responses={**documented(404), 200: SSE},
)
async def join_stream(
    thread_id: ThreadId,
    run_id: RunId,
    caller: CallerDep,
    svc: Svc,
    engine: Runs,
    stream_mode: Modes = None,
    cancel_on_disconnect: Annotated[Flag, Query()] = False,
    last_event: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """The run's events after `Last-Event-ID` (all of them without one, or with `-1`), live
    until it ends, from whichever process runs it."""
    record = await _owned_run(svc, caller, thread_id, run_id)
    return event_stream(
        engine,
        record,
        after=last_event_id(last_event),
        modes=_parse_modes(stream_mode),
        cancel_on_disconnect=cancel_on_disconnect,
    )


@router.post(
    "/threads/{thread_id}/runs/{run_id}/cancel",
    status_code=202,
    response_model=None,
    responses={
        **documented(404),
        202: {"description": "Cancelling (without `wait`)."},
        200: {
            "description": f"With `wait`: the run has stopped. {RUN_RESULT}",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
)
async def cancel_run(
    thread_id: ThreadId,
    run_id: RunId,
    caller: CallerDep,
    svc: Svc,
    graphs: Graphs,
    engine: Runs,
    wait: Annotated[Flag, Query()] = False,
    action: Annotated[Literal["interrupt", "rollback"], Query()] = "interrupt",
) -> Response:
    """`interrupt` keeps what the run did and stops it at its next step; `rollback` stops it now
    and deletes it with its checkpoints. With `wait`, answers the run's result once it stopped."""
    record = await _owned_run(svc, caller, thread_id, run_id)
    await engine.cancel(record.id, action)
    if wait:
        return waited(engine, graphs, record)
    return Response(status_code=202)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204, responses=documented(404, 409))
async def delete_run(thread_id: ThreadId, run_id: RunId, caller: CallerDep, store: ThreadsDep) -> Response:
    """Forgets a finished run's record; the thread's state keeps what it did (a thread's history
    is its checkpoints). A pending or running run is 409: cancel it first."""
    outcome = await store.delete_run(
        valid_uuid(thread_id, "thread ID"),
        uuid.UUID(valid_uuid(run_id, "run ID")),
        caller.user.id,
    )
    if outcome == "missing":
        raise HTTPException(404, f"Run {run_id} not found")
    if outcome == "active":
        raise HTTPException(409, f"Run {run_id} is pending or running: cancel it first")
    return Response(status_code=204)


# --- stateless runs: a temporary thread, deleted when the run ends unless on_completion=keep -------


@router.post("/runs/stream", response_class=EventSourceResponse, responses=STREAMED)
async def stream_stateless(
    body: StatelessRunStream, caller: CallerDep, graphs: Graphs, engine: Runs
) -> EventSourceResponse:
    record = await engine.submit(_stateless_run(body, caller, graphs, background=False))
    return event_stream(engine, record, cancel_on_disconnect=body.on_disconnect == "cancel")


@router.post("/runs/wait", response_model=dict[str, Any], responses=WAITED)
async def wait_stateless(
    body: StatelessRunStream, caller: CallerDep, graphs: Graphs, engine: Runs
) -> StreamingResponse:
    req = _stateless_run(body, caller, graphs, background=False, extra_modes=("values",))
    record = await engine.submit(req)
    return waited(engine, graphs, record, cancel_on_disconnect=body.on_disconnect == "cancel")


@router.post("/runs", response_model=Run, responses=RUN_ERRORS)
async def create_stateless(
    body: StatelessRunCreate, caller: CallerDep, graphs: Graphs, engine: Runs
) -> Response:
    if body.on_disconnect is not None:
        raise refuse("on_disconnect", "on_disconnect applies to streamed and waited runs only")
    record = await engine.submit(_stateless_run(body, caller, graphs, background=True))
    return json(run_body(record), headers={"Content-Location": _locations(record, "")["Content-Location"]})


@router.post("/runs/batch", response_model=list[Run], responses=RUN_ERRORS)
async def create_batch(
    body: Annotated[list[StatelessRunCreate], Body(min_length=1, max_length=100)],
    caller: CallerDep,
    graphs: Graphs,
    engine: Runs,
) -> Response:
    """Stateless background runs; each is checked before any starts."""
    for i, b in enumerate(body):
        if b.on_disconnect is not None:
            raise refuse(f"{i}.on_disconnect", "on_disconnect applies to streamed and waited runs only")
    requests = [_stateless_run(b, caller, graphs, background=True) for b in body]
    return json([run_body(await engine.submit(req)) for req in requests])
