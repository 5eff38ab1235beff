"""Assistants: one per registered workflow (graphs/registry.py), read-only. Its id is the one
`langgraph dev` gives a graph's assistant (uuid5 of the workflow name), and the workflow name is
accepted wherever an assistant id is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from langgraph.graph.state import CompiledStateGraph
from pydantic import Field, TypeAdapter, WithJsonSchema

from api.agent.common import CallerDep, assistant_id, json, refuse, workflow_of
from api.agent.models import (
    MAX_OFFSET,
    PAGINATION,
    AgentBody,
    Assistant,
    AssistantFields,
    Flag,
    Graph,
    GraphSchema,
    GraphSchemaNoId,
    Int,
    JsonObject,
    documented,
)
from api.deps import Graphs
from graphs.registry import WORKFLOWS
from nodes.context import HOST_SET

router = APIRouter(tags=["agent: assistants"])

AssistantField = Literal[
    "assistant_id",
    "graph_id",
    "name",
    "description",
    "config",
    "context",
    "created_at",
    "updated_at",
    "metadata",
    "version",
]
FIELDS: tuple[str, ...] = get_args(AssistantField)
READ_ONLY = (
    "assistants are read-only on this service: there is one per registered workflow "
    "(graphs/registry.py), with no configuration of its own"
)
SINCE = datetime.now(UTC)  # when this process registered them


class AssistantSearch(AgentBody):
    metadata: JsonObject | None = None
    graph_id: str | None = None
    name: str | None = None
    limit: Int = Field(10, ge=1, le=1000)
    offset: Int = Field(0, ge=0, le=MAX_OFFSET)
    sort_by: Literal["assistant_id", "created_at", "updated_at", "name", "graph_id"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[AssistantField] | None = None


class AssistantCount(AgentBody):
    metadata: JsonObject | None = None
    graph_id: str | None = None
    name: str | None = None


def assistant_body(workflow: str) -> dict[str, Any]:
    return {
        "assistant_id": assistant_id(workflow),
        "graph_id": workflow,
        "name": workflow,
        "description": WORKFLOWS[workflow].description,
        "config": {},
        "context": {},
        "created_at": SINCE,
        "updated_at": SINCE,
        "metadata": {"created_by": "system"},
        "version": 1,
    }


def _matching(
    metadata: dict[str, Any] | None, graph_id: str | None, name: str | None
) -> list[dict[str, Any]]:
    out = []
    for workflow in WORKFLOWS:
        a = assistant_body(workflow)
        if graph_id is not None and workflow != graph_id:
            continue
        if name is not None and name.lower() not in a["name"].lower():
            continue
        if metadata and any(a["metadata"].get(k) != v for k, v in metadata.items()):
            continue
        out.append(a)
    return out


@router.post(
    "/assistants/search",
    response_model=list[AssistantFields],
    responses={**documented(), 200: {"description": "The matching assistants.", "headers": PAGINATION}},
)
async def search_assistants(body: AssistantSearch, caller: CallerDep) -> Response:
    found = _matching(body.metadata, body.graph_id, body.name)
    if sort_by := body.sort_by:
        found.sort(key=lambda a: str(a[sort_by]), reverse=body.sort_order == "desc")
    page = found[body.offset : body.offset + body.limit]
    if body.select:
        page = [{k: a[k] for k in body.select} for a in page]
    more = body.offset + len(page) < len(found)
    headers = {"X-Pagination-Total": str(len(found))}
    if more:
        headers["X-Pagination-Next"] = str(body.offset + len(page))
    return json(page, headers=headers)


@router.post("/assistants/count", response_model=int, responses=documented())
async def count_assistants(body: AssistantCount, caller: CallerDep) -> Response:
    return json(len(_matching(body.metadata, body.graph_id, body.name)))


@router.get("/assistants/{assistant}", response_model=Assistant, responses=documented(404))
async def get_assistant(assistant: str, caller: CallerDep) -> Response:
    return json(assistant_body(workflow_of(assistant)))


XRAY = WithJsonSchema(
    {
        "anyOf": [{"type": "boolean"}, {"type": "integer", "minimum": 1}],
        "description": "Draw subgraphs: `true` (all levels), `false`, or how many levels deep.",
    }
)


def _xray(value: str | None) -> bool | int:
    if value in (None, "", "false", "False"):
        return False
    if value in ("true", "True"):
        return True
    try:
        depth = int(value)
    except ValueError:
        depth = 0
    if depth <= 0:
        raise refuse("xray", "Invalid xray value: true, false or a depth >= 1", "query")
    return depth


@router.get("/assistants/{assistant}/graph", response_model=Graph, responses=documented(404))
async def get_assistant_graph(
    assistant: str, graphs: Graphs, caller: CallerDep, xray: Annotated[str | None, Query(), XRAY] = None
) -> Response:
    """The drawable graph (`graph.get_graph(xray=...).to_json()`), as Studio draws it."""
    drawn = graphs[workflow_of(assistant)].get_graph(xray=_xray(xray)).to_json()
    for node in drawn.get("nodes", []):
        if isinstance(node.get("data"), dict):
            node["data"].pop("id", None)
    return json(drawn)


def schemas(graph: CompiledStateGraph) -> dict[str, Any]:
    """Input, output, state, config and context JSON schemas. The context schema lists only
    what a client may pass here: nothing, since the service sets the run's context itself."""
    context = graph.get_context_jsonschema() or {"type": "object", "properties": {}}
    context = {
        **context,
        "properties": {k: v for k, v in context.get("properties", {}).items() if k not in HOST_SET},
        "description": "Set by the service for each run (user, thread, timezone, clock): "
        "a run's `context` must be empty.",
    }
    return {
        "input_schema": graph.get_input_jsonschema(),
        "output_schema": graph.get_output_jsonschema(),
        "state_schema": TypeAdapter(graph.builder.state_schema).json_schema(),
        "config_schema": {
            "type": "object",
            "properties": {},
            "title": "Configurable",
            "description": "These graphs take no configurable values.",
        },
        "context_schema": context,
    }


@router.get("/assistants/{assistant}/schemas", response_model=GraphSchema, responses=documented(404))
async def get_assistant_schemas(assistant: str, graphs: Graphs, caller: CallerDep) -> Response:
    workflow = workflow_of(assistant)
    return json({"graph_id": workflow, **schemas(graphs[workflow])})


@router.get(
    "/assistants/{assistant}/subgraphs", response_model=dict[str, GraphSchemaNoId], responses=documented(404)
)
@router.get(
    "/assistants/{assistant}/subgraphs/{namespace}",
    response_model=dict[str, GraphSchemaNoId],
    responses=documented(404),
)
async def get_assistant_subgraphs(
    assistant: str,
    graphs: Graphs,
    caller: CallerDep,
    namespace: str | None = None,
    recurse: Annotated[Flag, Query()] = False,
) -> Response:
    graph = graphs[workflow_of(assistant)]
    found = {
        ns: schemas(sub)
        async for ns, sub in graph.aget_subgraphs(namespace=namespace, recurse=recurse)
        if isinstance(sub, CompiledStateGraph)  # every graph here is a StateGraph
    }
    return json(found)


@router.post("/assistants/{assistant}/versions", response_model=list[Assistant], responses=documented(404))
async def assistant_versions(assistant: str, caller: CallerDep) -> Response:
    return json([assistant_body(workflow_of(assistant))])


def _read_only(allow: str) -> Any:
    """Writes to assistants: 405 with the methods the path does serve (`Allow`), as HTTP says.
    They are not operations of the published API, so the document leaves them out."""

    async def refuse_write(caller: CallerDep) -> Response:
        raise HTTPException(405, READ_ONLY, headers={"Allow": allow})

    return refuse_write


for path, methods, allow in (
    ("/assistants", ["POST"], ""),
    ("/assistants/{assistant}", ["PATCH", "DELETE", "PUT"], "GET"),
    ("/assistants/{assistant}/latest", ["POST"], ""),
):
    router.add_api_route(path, _read_only(allow), methods=methods, include_in_schema=False)
