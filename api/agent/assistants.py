"""Agent Server `assistants` routes. Each registered workflow is an assistant whose id is the
workflow name (or the id LangGraph's server derives from it), as `langgraph dev` does for the
default assistant of each graph."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from api.deps import CurrentUser, Graphs
from graphs.registry import WORKFLOWS

router = APIRouter(tags=["assistants"])

# LangGraph's server names a graph's default assistant uuid5(NAMESPACE_GRAPH, graph_id).
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
_BY_UUID = {str(uuid.uuid5(NAMESPACE_GRAPH, name)): name for name in WORKFLOWS}


def workflow_of(assistant_id: str) -> str:
    name = assistant_id if assistant_id in WORKFLOWS else _BY_UUID.get(assistant_id.lower())
    if name is None:
        raise HTTPException(404, f"assistant {assistant_id!r} not found")
    return name


def parse_xray(value: str | None) -> bool | int:
    """As the Agent Server reads it: true/false, or a positive depth of subgraphs to expand."""
    if value is None or value in ("false", "False"):
        return False
    if value in ("true", "True"):
        return True
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise HTTPException(422, "invalid xray value: true, false or a positive integer")


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(
    assistant_id: str,
    _: CurrentUser,
    graphs: Graphs,
    xray: Annotated[str | None, Query(description="true, false or a subgraph depth")] = None,
) -> dict[str, Any]:
    """The workflow's drawable graph, `graph.get_graph(xray=...).to_json()`: `nodes` [{id, type,
    data}] and `edges` [{source, target, conditional?}]. Fallback handlers appear as nodes named
    `__error_handler__<node>`."""
    graph = graphs[workflow_of(assistant_id)]
    drawn = graph.get_graph(xray=parse_xray(xray)).to_json()
    for node in drawn.get("nodes", []):
        if isinstance(data := node.get("data"), dict):
            data.pop("id", None)  # the runnable's import path: not the client's business
    return drawn
