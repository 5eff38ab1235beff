"""weekly_quests (seed: "Sequential Multi-Step Job"), one user, one ISO week.

    START ── load_active_goals ─(no active goals)─ END
               └─ analyse_completion_patterns ── write_quests ── create_quest_missions ── notify_quests

Run by the weekly job on the thread `job:weekly_quests:<user>:<week>`: a retried job resumes at
the step that failed, and the missions and the notification are keyed by user and week.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END, START, StateGraph

from core.settings import Settings
from nodes.context import Context, studio_graph
from nodes.kit import DB_RETRY
from nodes.weekly_quests import (
    GRAPH,
    analyse_completion_patterns,
    create_quest_missions,
    load_active_goals,
    notify_quests,
    write_quests,
)
from state.weekly_quests import WeeklyQuestsInput, WeeklyQuestsOutput, WeeklyQuestsState

__all__ = ["GRAPH", "build", "graph"]


def has_goals(state: WeeklyQuestsState) -> Literal["analyse_completion_patterns", "__end__"]:
    """No active goal, no quests: the run ends with its reason."""
    return "analyse_completion_patterns" if state.get("goals") else "__end__"


def build(
    settings: Settings | None = None,
) -> StateGraph[WeeklyQuestsState, Context[Any], WeeklyQuestsInput, WeeklyQuestsOutput]:
    g = StateGraph(
        WeeklyQuestsState,
        context_schema=Context,
        input_schema=WeeklyQuestsInput,
        output_schema=WeeklyQuestsOutput,
    )
    g.add_node(load_active_goals, retry_policy=DB_RETRY)
    g.add_node(analyse_completion_patterns, retry_policy=DB_RETRY)
    g.add_node(write_quests)
    g.add_node(create_quest_missions, retry_policy=DB_RETRY)
    g.add_node(notify_quests, retry_policy=DB_RETRY)
    g.add_edge(START, "load_active_goals")
    g.add_conditional_edges("load_active_goals", has_goals, ["analyse_completion_patterns", END])
    g.add_edge("analyse_completion_patterns", "write_quests")
    g.add_edge("write_quests", "create_quest_missions")
    g.add_edge("create_quest_missions", "notify_quests")
    g.add_edge("notify_quests", END)
    return g


graph = studio_graph(build(), GRAPH)
