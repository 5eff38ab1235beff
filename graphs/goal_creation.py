"""goal_creation (seed: "Epic 2 + Epic 3: Goal Creation with Memory").

    START ─┬─ detect_goal_emotion ──┐
           └─ recall_similar_goals ─┴─ create_goal ── remember_goal ─┬─ start_decomposition ─┐
                                                                     └─ notify_created ──────┴─ END

The two context branches are independent and degrade (neutral emotion, no similar goals); the
goal is created with its emotional driver, remembered as a project memory, then decomposition
starts as a background run while the confirmation is recorded. Every write is keyed by the goal
id, so a resumed run does each once.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, StateGraph

from core.settings import Settings, get_settings
from nodes.context import Context, studio_graph
from nodes.goal_creation import (
    GRAPH,
    create_goal,
    detect_goal_emotion,
    neutral_emotion,
    no_similar_goals,
    notify_created,
    recall_similar_goals,
    remember_goal,
    start_decomposition,
)
from nodes.kit import DB_RETRY, Branch, gather
from state.goal_creation import GoalCreationInput, GoalCreationOutput, GoalCreationState

__all__ = ["GRAPH", "build", "graph"]


def build(
    settings: Settings | None = None,
) -> StateGraph[GoalCreationState, Context[Any], GoalCreationInput, GoalCreationOutput]:
    s = settings or get_settings()
    g = StateGraph(
        GoalCreationState,
        context_schema=Context,
        input_schema=GoalCreationInput,
        output_schema=GoalCreationOutput,
    )
    context = (
        Branch(detect_goal_emotion, neutral_emotion, retry=False),  # a model call: the gateway retries
        Branch(recall_similar_goals, no_similar_goals),
    )
    gather(g, GRAPH, context, join=create_goal, timeout=s.branch_timeout_s, join_retry=True)
    g.add_node(remember_goal, retry_policy=DB_RETRY)
    g.add_node(start_decomposition, retry_policy=DB_RETRY)
    g.add_node(notify_created, retry_policy=DB_RETRY)
    g.add_edge("create_goal", "remember_goal")
    g.add_edge("remember_goal", "start_decomposition")
    g.add_edge("remember_goal", "notify_created")
    g.add_edge(["start_decomposition", "notify_created"], END)
    return g


graph = studio_graph(build(), GRAPH)
