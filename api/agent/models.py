"""The Agent Server API's response bodies and request-field schemas, as OpenAPI documents them.
Routes build their bodies in `common.py` (the wire format `langgraph dev` sends, which the SDKs
read) and return them as they are; these models describe that format, field for field, so the
published document and the answers agree (a contract test checks every operation)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema
from pydantic import Strict as Strict_
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from api.errors import ErrorBody, responses
from api.schemas import Strict
from core.text import unstorable

# Pages start at most this far in (Postgres' OFFSET is a bigint; no list here is near this long).
MAX_OFFSET = 2**31

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
Strategy = Literal["reject", "rollback", "interrupt", "enqueue"]
StreamMode = Literal[
    "values", "updates", "custom", "debug", "tasks", "checkpoints", "events", "messages", "messages-tuple"
]


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of an Agent Server route: every route but /ok and /info needs a bearer token
    (401), every route with input can refuse it (422); plus the route's own `codes`."""
    return responses(*sorted({401, 422, *codes}))


class AgentBody(Strict):
    """A request body of the Agent Server API: unknown fields are refused."""


def no_coercion(value: Any) -> Any:
    # JSON says what a number is: `false` is no offset and `"10"` no limit (pydantic would read both).
    if isinstance(value, bool | str):
        raise ValueError("Input should be a JSON number")
    return value


# JSON values as the service stores them (Postgres jsonb) and answers them again (orjson): text
# without NUL, numbers within ±2^62. jsonb keeps a number as the decimal its JSON text says
# (1e300 becomes a 301-digit integer, -9.223372036854776e18 one just past 64 bits), which orjson
# cannot write back; 2^62 leaves room for that rounding and is exact in the published document.
MAX_NUMBER = 2**62
Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]
Int64 = Annotated[int, Strict_(), Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]
Number = Annotated[float, Strict_(), Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]


def _keys_are_text(schema: dict[str, Any]) -> None:
    # pydantic says it as patternProperties; JSON Schema's own word is propertyNames (and test
    # generators draw from it far faster).
    [(pattern, values)] = schema.pop("patternProperties").items()
    schema.update(additionalProperties=values, propertyNames={"pattern": pattern})


JsonValue = TypeAliasType(
    "JsonValue",
    "bool | Int64 | Number | Text | list[JsonValue] | _Object | None",
)
# Keys are text too: keys that are not (NUL) are refused, not left unconstrained.
_Object = Annotated[dict[Text, JsonValue], Field(json_schema_extra=_keys_are_text)]


def _json_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return unstorable(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return None if -MAX_NUMBER <= value <= MAX_NUMBER else f"numbers must lie within ±2^62, not {value}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if problem := (isinstance(key, str) and unstorable(key)) or _json_problem(item):
            return problem
    return None


def _storable_json(value: Any) -> Any:
    # One clear reason for the whole value (the union below would list one per JSON type).
    if (problem := _json_problem(value)) is not None:
        raise PydanticCustomError("unstorable_json", problem)
    return value


JsonData = Annotated[JsonValue, BeforeValidator(_storable_json)]
JsonObject = Annotated[_Object, BeforeValidator(_storable_json)]


def _query_flag(value: Any) -> Any:
    if isinstance(value, str):
        if value not in ("true", "false", "1", "0"):
            raise ValueError("Input should be true, false, 1 or 0")
        return value in ("true", "1")
    return value


# A query flag as the SDKs send it: `true`/`false` (JS, httpx) or `1`/`0` (the Python SDK's cancel).
Flag = Annotated[
    bool, BeforeValidator(_query_flag), WithJsonSchema({"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}]})
]
Int = Annotated[int, BeforeValidator(no_coercion)]
Float = Annotated[float, BeforeValidator(no_coercion)]
Bool = Annotated[bool, Strict_()]


NotServed = Literal["null", "empty object", "empty list", "false", "zero", "empty string"]
_NOT_SERVED: dict[str, dict[str, Any]] = {
    "null": {"type": "null"},
    "empty object": {"type": ["object", "null"], "maxProperties": 0},
    "empty list": {"type": ["array", "null"], "maxItems": 0},
    "false": {"enum": [False, None]},
    "zero": {"enum": [0, None]},
    "empty string": {"enum": ["", None]},
}


def not_served(kind: NotServed, why: str) -> WithJsonSchema:
    """The schema of a request field this service does not serve: the values it accepts, none or
    an empty one (a client's default). The field keeps its type, so a value of another type is
    refused as such; any other value of its type answers 422 naming the field."""
    return WithJsonSchema({**_NOT_SERVED[kind], "description": f"Not supported: {why}"})


UUID_STRING = WithJsonSchema({"type": "string", "format": "uuid"})
ThreadId = Annotated[str, UUID_STRING]  # checked by the route, which names the field when it is not
RunId = Annotated[str, UUID_STRING]


class Wire(BaseModel):
    """A response body: the keys listed are promised (a client ignores any other)."""


# --- meta -------------------------------------------------------------------------------------


class Ok(Wire):
    ok: Literal[True]


class InfoFlags(Wire):
    assistants: bool
    crons: bool
    langsmith: bool


class InfoHost(Wire):
    kind: str
    project_id: str | None
    revision_id: str | None
    tenant_id: str | None


class Info(Wire):
    version: str
    langgraph_py_version: str
    flags: InfoFlags
    host: InfoHost


# --- assistants -------------------------------------------------------------------------------


class Assistant(Wire):
    """One per registered workflow; read-only."""

    assistant_id: uuid.UUID = Field(description="uuid5 of the workflow name, as `langgraph dev` names it.")
    graph_id: str = Field(description="The workflow's name.")
    name: str
    description: str | None
    config: dict[str, Any]
    context: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    metadata: dict[str, Any]
    version: int


class AssistantFields(Wire):
    """An assistant in a search: the fields `select` names, else all of them."""

    assistant_id: uuid.UUID | None = None
    graph_id: str | None = None
    name: str | None = None
    description: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    metadata: dict[str, Any] | None = None
    version: int | None = None


class GraphNode(Wire):
    id: str | int
    type: str
    data: Any = None
    metadata: dict[str, Any] | None = None


class GraphEdge(Wire):
    source: str | int
    target: str | int
    data: Any = None
    conditional: bool | None = None


class Graph(Wire):
    """`graph.get_graph(xray=...).to_json()`."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]


class GraphSchemaNoId(Wire):
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None
    state_schema: dict[str, Any] | None
    config_schema: dict[str, Any] | None
    context_schema: dict[str, Any] | None


class GraphSchema(GraphSchemaNoId):
    graph_id: str


# --- threads and state ------------------------------------------------------------------------


class Interrupt(Wire):
    id: str | None
    value: Any


class CheckpointConfig(Wire):
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    checkpoint_map: dict[str, Any] | None = None


class Thread(Wire):
    thread_id: uuid.UUID
    created_at: dt.datetime
    updated_at: dt.datetime
    state_updated_at: dt.datetime
    metadata: dict[str, Any] = Field(
        description="Stored metadata, plus `graph_id` and `assistant_id` once set."
    )
    config: dict[str, Any]
    status: ThreadStatus
    values: dict[str, Any]
    interrupts: dict[str, list[Interrupt]] = Field(description="Pending interrupts by task id.")


class ThreadFields(Wire):
    """A thread in a search: the fields `select` names, else all of them."""

    thread_id: uuid.UUID | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    state_updated_at: dt.datetime | None = None
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    status: ThreadStatus | None = None
    values: dict[str, Any] | None = None
    interrupts: dict[str, list[Interrupt]] | None = None


class TaskError(Wire):
    error: str
    message: str


class StateTask(Wire):
    id: str
    name: str
    path: list[Any]
    error: TaskError | str | None
    interrupts: list[Interrupt]
    checkpoint: dict[str, Any] | None
    state: ThreadState | None
    result: Any


class ThreadState(Wire):
    """A checkpoint of the thread (all null but the lists before the thread's first run)."""

    values: dict[str, Any] | list[Any]
    next: list[str]
    tasks: list[StateTask]
    metadata: dict[str, Any] | None
    created_at: str | None
    checkpoint: CheckpointConfig | None
    parent_checkpoint: CheckpointConfig | None
    interrupts: list[Interrupt]
    checkpoint_id: str | None
    parent_checkpoint_id: str | None


class ThreadStateUpdateResponse(Wire):
    checkpoint: CheckpointConfig | None


# --- runs -------------------------------------------------------------------------------------


class RunKwargs(Wire):
    input: Any
    command: dict[str, Any] | None
    config: dict[str, Any]
    context: dict[str, Any]
    stream_mode: list[str]
    interrupt_before: str | list[str] | None
    interrupt_after: str | list[str] | None
    webhook: None
    feedback_keys: None
    temporary: bool
    subgraphs: bool
    resumable: bool
    checkpoint_id: str | None
    durability: str | None


class Run(Wire):
    run_id: uuid.UUID
    thread_id: uuid.UUID
    assistant_id: uuid.UUID
    created_at: dt.datetime
    updated_at: dt.datetime
    status: RunStatus
    metadata: dict[str, Any]
    run_kwargs: RunKwargs = Field(serialization_alias="kwargs", description="What the run was started with.")
    multitask_strategy: Strategy


class RunFields(Wire):
    """A run in a list: the fields `select` names, else all of them."""

    run_id: uuid.UUID | None = None
    thread_id: uuid.UUID | None = None
    assistant_id: uuid.UUID | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    status: RunStatus | None = None
    metadata: dict[str, Any] | None = None
    run_kwargs: RunKwargs | None = Field(None, serialization_alias="kwargs")
    multitask_strategy: Strategy | None = None


RUN_RESULT = (
    "The run's last `values` (with `__interrupt__` when it paused), or "
    '`{"__error__": {"error", "message"}}` when it failed. Newlines may precede the JSON while the '
    "run goes on (a keep-alive every few seconds)."
)
SSE = {
    "description": "Server-sent events: `event:` the stream mode (`metadata` first, `error` "
    "`{error, message}` if the run fails), `data:` its JSON, `id:` the event number "
    "(send it back as `Last-Event-ID` to resume). The stream ends with the run.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
PAGINATION = {
    "X-Pagination-Total": {"description": "Matches so far (at least).", "schema": {"type": "integer"}},
    "X-Pagination-Next": {
        "description": "The `offset` of the next page, when there is one.",
        "schema": {"type": "integer"},
    },
}
METHOD_NOT_ALLOWED = {405: {"model": ErrorBody, "description": "Read-only: the `Allow` header says what is."}}

StateTask.model_rebuild()
