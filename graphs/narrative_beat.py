"""narrative_beat (seed: "Epic 2 + Epic 4: Narrative Generation with Memory"; cost pattern 2).

                            ┌─ load_project_memories ─┐
    START ── load_goal ─────┼─ load_narrative_prefs ──┼─ analyse_triggers ── select_beat ─┐
                            └─ load_goal_progress ────┘                                  │
        ┌─ (the trigger already has its beat) ────────────────────────────────────────── END
        └─┬─ write_story (premium) ──┬─ check_unlocks ── store_beat ── END
          └─ write_teaser (cheap) ───┘

Input `{"goal_id": str}` (the user is the run's `Context.user_id`; someone else's goal is
NotFound). Output `{"beat": {id, goal_id, beat_type, title, text, unlocks, created_at},
"created": bool, "teaser": str | None, "unlocks": [{key, title, description}],
"degraded": [node, ...], "usage": {input_tokens, output_tokens, cost_usd, calls, by_site}}`.

The three gathering branches run in one superstep and each degrades (no memories, no
preferences, no progress: then only a plain progression beat) with its node named in
`degraded`. The two model calls are independent, so they run in parallel, each on the model
that fits: the story on the premium model, the one-line teaser on the cheap one (a failed
teaser falls back to a fixed line). A beat is never generated twice for one trigger: when the
trigger already has its beat, or nothing happened on the goal since its last beat, the run ends
after `select_beat` and returns the stored beat with `created: false`, without a model call.
Writes come last and are keyed by the beat id (`stable_id(user, goal, trigger_key)`).
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END, START, StateGraph

from core.settings import Settings, get_settings
from nodes.context import Context, studio_graph
from nodes.kit import DB_RETRY, Branch, fallback, gather
from nodes.narrative_beat import (
    GRAPH,
    analyse_triggers,
    check_unlocks,
    fallback_teaser,
    load_goal,
    load_goal_progress,
    load_narrative_prefs,
    load_project_memories,
    no_narrative_prefs,
    no_progress,
    no_project_memories,
    select_beat,
    store_beat,
    write_story,
    write_teaser,
)
from state.narrative_beat import NarrativeInput, NarrativeOutput, NarrativeState

__all__ = ["GRAPH", "build", "graph"]

Writer = Literal["write_story", "write_teaser"]
WRITERS: tuple[Writer, ...] = ("write_story", "write_teaser")


def after_select(state: NarrativeState) -> list[Writer] | Literal["__end__"]:
    """Both writers at once (one superstep), or END when the trigger already has its beat."""
    return "__end__" if state.get("existing") else list(WRITERS)


def build(
    settings: Settings | None = None,
) -> StateGraph[NarrativeState, Context[Any], NarrativeInput, NarrativeOutput]:
    s = settings or get_settings()
    g = StateGraph(
        NarrativeState,
        context_schema=Context,
        input_schema=NarrativeInput,
        output_schema=NarrativeOutput,
    )
    g.add_node(load_goal, retry_policy=DB_RETRY)
    loaders = (
        Branch(load_project_memories, no_project_memories),
        Branch(load_narrative_prefs, no_narrative_prefs),
        Branch(load_goal_progress, no_progress),
    )
    gather(g, GRAPH, loaders, join=analyse_triggers, timeout=s.branch_timeout_s, after="load_goal")
    g.add_node(select_beat, retry_policy=DB_RETRY)
    # Model calls retry inside the gateway (one retry layer per call).
    g.add_node(write_story, timeout=s.reply_timeout_s)
    g.add_node(
        write_teaser,
        timeout=s.reply_timeout_s,
        error_handler=fallback(GRAPH, fallback_teaser, then="check_unlocks"),
    )
    g.add_node(check_unlocks, retry_policy=DB_RETRY)
    g.add_node(store_beat, retry_policy=DB_RETRY)
    g.add_edge(START, "load_goal")
    g.add_edge("analyse_triggers", "select_beat")
    g.add_conditional_edges("select_beat", after_select, [*WRITERS, END])
    g.add_edge(list(WRITERS), "check_unlocks")
    g.add_edge("check_unlocks", "store_beat")
    g.add_edge("store_beat", END)
    return g


# For `langgraph.json` / LangGraph Studio: no checkpointer (the platform brings its own).
graph = studio_graph(build(), GRAPH)
