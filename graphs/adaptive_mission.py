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

from typing import Literal

import psycopg
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy
from psycopg_pool import PoolTimeout

from core.errors import Unavailable
from core.settings import Settings, get_settings
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
from nodes.context import Context, fallback
from state.adaptive_mission import AdaptiveInput, AdaptiveOutput, AdaptiveState

__all__ = ["GRAPH", "build", "graph", "route"]

ASSESSMENTS = ("assess_emotion", "assess_energy", "count_completions")
PATHS = ("self_care", "challenge", "celebration", "triad")

# Transient database trouble is worth one more quick attempt; model calls retry inside the
# gateway (services/llm/retry.py), so they are not listed: one retry layer per call. Path nodes
# write with deterministic ids (`create_once`), so a retried attempt creates nothing twice.
DB_RETRY = RetryPolicy(
    max_attempts=2,
    initial_interval=0.05,
    jitter=True,
    retry_on=(psycopg.OperationalError, PoolTimeout, Unavailable),
)


def route(state: AdaptiveState) -> Literal["self_care", "challenge", "celebration", "triad"]:
    """The path `decide` chose. The return annotation lists every branch, so the compiled graph
    (and its drawing) has an edge from `decide` to each of the four."""
    return state["path"]


def build(settings: Settings | None = None) -> StateGraph:
    s = settings or get_settings()
    g = StateGraph(
        AdaptiveState,
        context_schema=Context,
        input_schema=AdaptiveInput,
        output_schema=AdaptiveOutput,
    )
    g.add_node(
        assess_emotion,
        timeout=s.branch_timeout_s,
        retry_policy=DB_RETRY,
        error_handler=fallback(GRAPH, neutral_emotion, then="decide"),
    )
    g.add_node(
        assess_energy,
        timeout=s.branch_timeout_s,
        retry_policy=DB_RETRY,
        error_handler=fallback(GRAPH, medium_energy, then="decide"),
    )
    g.add_node(
        count_completions,
        timeout=s.branch_timeout_s,
        retry_policy=DB_RETRY,
        error_handler=fallback(GRAPH, no_completions, then="decide"),
    )
    g.add_node(decide)
    for path in (self_care, challenge, celebration, triad):
        g.add_node(path, retry_policy=DB_RETRY)
    for branch in ASSESSMENTS:
        g.add_edge(START, branch)
    g.add_edge(list(ASSESSMENTS), "decide")
    g.add_conditional_edges("decide", route)
    for path_name in PATHS:
        g.add_edge(path_name, END)
    return g


# For `langgraph.json` / LangGraph Studio, and for direct use: no checkpointer.
graph = build().compile(name=GRAPH)
