"""The one registry of workflows: the API, the worker and `langgraph.json` all read it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph.graph import StateGraph

from core.settings import Settings
from graphs import adaptive, chat, decomposition, goal_creation, processing


@dataclass(frozen=True)
class Workflow:
    name: str
    build: Callable[[], StateGraph]
    module: str  # where `graph` (the checkpointer-less compile for Studio) lives
    description: str
    # Per-run config the workflow needs (e.g. its concurrency limit as `max_concurrency`).
    run_config: Callable[[Settings], dict[str, Any]] | None = None


WORKFLOWS: dict[str, Workflow] = {
    w.name: w
    for w in (Workflow("chat", chat.build, "graphs/chat.py", "Eliza's chat turn (fan-out, fan-in)"),)
}


def langgraph_json_graphs() -> dict[str, str]:
    return {name: f"./{w.module}:graph" for name, w in WORKFLOWS.items()}
