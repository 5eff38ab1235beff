"""The one registry of workflows: the API, the worker and `langgraph.json` all read it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from langgraph.graph import StateGraph

from graphs import chat


@dataclass(frozen=True)
class Workflow:
    name: str
    build: Callable[[], StateGraph]
    module: str  # where `graph` (the checkpointer-less compile for Studio) lives
    description: str


WORKFLOWS: dict[str, Workflow] = {
    w.name: w
    for w in (Workflow("chat", chat.build, "graphs/chat.py", "Eliza's chat turn (fan-out, fan-in)"),)
}


def langgraph_json_graphs() -> dict[str, str]:
    return {name: f"./{w.module}:graph" for name, w in WORKFLOWS.items()}
