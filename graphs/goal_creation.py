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

from langgraph.graph import END, START, StateGraph

from core.settings import Settings, get_settings
from graphs.chat import DB_RETRY
from nodes.context import Context, fallback
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
from state.goal_creation import GoalCreationInput, GoalCreationOutput, GoalCreationState


def build(settings: Settings | None = None) -> StateGraph:
    s = settings or get_settings()
    g = StateGraph(
        GoalCreationState,
        context_schema=Context,
        input_schema=GoalCreationInput,
        output_schema=GoalCreationOutput,
    )
    g.add_node(
        detect_goal_emotion,
        timeout=s.branch_timeout_s,
        error_handler=fallback(GRAPH, neutral_emotion, then="create_goal"),
    )
    g.add_node(
        recall_similar_goals,
        timeout=s.branch_timeout_s,
        retry_policy=DB_RETRY,
        error_handler=fallback(GRAPH, no_similar_goals, then="create_goal"),
    )
    g.add_node(create_goal, retry_policy=DB_RETRY)
    g.add_node(remember_goal, retry_policy=DB_RETRY)
    g.add_node(start_decomposition, retry_policy=DB_RETRY)
    g.add_node(notify_created, retry_policy=DB_RETRY)
    g.add_edge(START, "detect_goal_emotion")
    g.add_edge(START, "recall_similar_goals")
    g.add_edge(["detect_goal_emotion", "recall_similar_goals"], "create_goal")
    g.add_edge("create_goal", "remember_goal")
    g.add_edge("remember_goal", "start_decomposition")
    g.add_edge("remember_goal", "notify_created")
    g.add_edge(["start_decomposition", "notify_created"], END)
    return g


graph = build().compile(name=GRAPH)
