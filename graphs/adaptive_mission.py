"""The adaptive_mission graph (seed Pattern 3: conditional branching).

    START ─┬─ assess_emotion ────┐                 ┌─ self_care ───┐
           ├─ assess_energy ─────┼─ decide ─route─┼─ challenge ───┼─ END
           └─ count_completions ─┘                 ├─ celebration ─┤
                                                   └─ triad ───────┘

The three assessments are independent and run in one superstep. Each has a timeout and an error
handler that writes its fallback (neutral emotion, medium energy, no completions), names itself
in `degraded` and goes on to `decide`, so a failed assessment never stops the run. `decide`
applies the seed's order (self-care, challenge, celebration, triad) with the thresholds of
domain/missions.py; `route` sends the run down exactly one path.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, StateGraph

from core.settings import Settings, get_settings
from domain.missions import Path
from nodes.adaptive_mission import (
    GRAPH,
    assess_emotion,
    assess_energy,
    celebration,
    challenge,
    count_completions,
    decide,
    medium_energy,
    neutral_emotion,
    no_completions,
    self_care,
    triad,
)
from nodes.context import Context, studio_graph
from nodes.kit import DB_RETRY, Branch, gather
from state.adaptive_mission import AdaptiveInput, AdaptiveOutput, AdaptiveState

__all__ = ["ASSESSMENTS", "GRAPH", "PATHS", "build", "graph", "route"]

ASSESSMENTS = ("assess_emotion", "assess_energy", "count_completions")
PATHS: tuple[Path, ...] = ("self_care", "challenge", "celebration", "triad")


def route(state: AdaptiveState) -> Path:
    """The path `decide` chose. Its return type lists every branch (a `Literal`), so the
    compiled graph (and its drawing) has an edge from `decide` to each of the four."""
    return state["path"]


def build(
    settings: Settings | None = None,
) -> StateGraph[AdaptiveState, Context[Any], AdaptiveInput, AdaptiveOutput]:
    s = settings or get_settings()
    g = StateGraph(
        AdaptiveState,
        context_schema=Context,
        input_schema=AdaptiveInput,
        output_schema=AdaptiveOutput,
    )
    # Path nodes write with deterministic ids (`create_once`): a retried attempt creates nothing twice.
    assessments = (
        Branch(assess_emotion, neutral_emotion),
        Branch(assess_energy, medium_energy),
        Branch(count_completions, no_completions),
    )
    gather(g, GRAPH, assessments, join=decide, timeout=s.branch_timeout_s)
    for path in (self_care, challenge, celebration, triad):
        g.add_node(path, retry_policy=DB_RETRY)
    g.add_conditional_edges("decide", route)
    for path_name in PATHS:
        g.add_edge(path_name, END)
    return g


# For `langgraph.json` / LangGraph Studio, and for direct use: no checkpointer.
graph = studio_graph(build(), GRAPH)
