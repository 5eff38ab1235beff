"""personalized_nudge (seed: "Epic 2 + Epic 7: Personalized Nudge with Memory").

    START ─┬─ load_preferences ──┐
           ├─ load_active_goals ─┼─ check_eligibility ─route─┬─ END  (active, already nudged today, capped)
           └─ load_inactivity ───┘                           └─ choose_channel ── write_message ──
                                                                check_tone ── schedule ── log_memory ── END

Input `{}`: the user is the run's context user, "now" the run's clock; local days are the user's
stored timezone. The three loaders run in one superstep. Preferences and goals degrade (defaults:
in-app only, default quiet hours, encouraging tone; no goals) and name themselves in `degraded`;
inactivity does not (without it nothing can be decided: the run fails and the job retries).

Rules (domain/nudges.py): only users inactive 2+ local days; channel by days inactive among the
opted-in ones; at most 3 per inactive streak and `max_per_day`; never inside quiet hours. The
message, subject and tiny step come from ONE structured call (seed, "Batch LLM Calls"); a draft
with a shaming phrase gets one rewrite, then the safe template. The insert is keyed by user and
local day, so a second run the same day returns the stored nudge with `created: false`.

Output: {scheduled, reason, nudge: {id, channel, message, subject, send_at, status,
sequence_index} | None, days_inactive, created, degraded, usage}.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END, StateGraph

from core.settings import Settings, get_settings
from nodes.context import Context, studio_graph
from nodes.kit import DB_RETRY, Branch, fallback, gather
from nodes.personalized_nudge import (
    GRAPH,
    check_eligibility,
    check_tone,
    choose_channel,
    default_preferences,
    load_active_goals,
    load_inactivity,
    load_preferences,
    log_memory,
    memory_not_logged,
    no_draft,
    no_goals,
    schedule,
    template_draft,
    write_message,
)
from state.personalized_nudge import NudgeInput, NudgeOutput, NudgeState

__all__ = ["GRAPH", "LOADERS", "build", "graph", "route"]

LOADERS = ("load_preferences", "load_active_goals", "load_inactivity")


def route(state: NudgeState) -> Literal["choose_channel", "__end__"]:
    """On to the nudge pipeline, or END with check_eligibility's reason."""
    return "choose_channel" if state.get("eligible") else "__end__"


def build(settings: Settings | None = None) -> StateGraph[NudgeState, Context[Any], NudgeInput, NudgeOutput]:
    s = settings or get_settings()
    g = StateGraph(NudgeState, context_schema=Context, input_schema=NudgeInput, output_schema=NudgeOutput)
    loaders = (
        Branch(load_preferences, default_preferences),
        Branch(load_active_goals, no_goals),
        # Without the inactivity nothing can be decided: no fallback, the run fails (a job retries).
        Branch(load_inactivity),
    )
    gather(g, GRAPH, loaders, join=check_eligibility, timeout=s.branch_timeout_s)
    g.add_node(choose_channel)
    g.add_node(
        write_message,
        timeout=s.reply_timeout_s,
        error_handler=fallback(GRAPH, no_draft, then="check_tone"),
    )
    g.add_node(
        check_tone,
        timeout=s.reply_timeout_s,
        error_handler=fallback(GRAPH, template_draft, then="schedule"),
    )
    g.add_node(schedule, retry_policy=DB_RETRY)
    g.add_node(
        log_memory,
        retry_policy=DB_RETRY,
        error_handler=fallback(GRAPH, memory_not_logged, then=END),
    )
    g.add_conditional_edges("check_eligibility", route)
    g.add_edge("choose_channel", "write_message")
    g.add_edge("write_message", "check_tone")
    g.add_edge("check_tone", "schedule")
    g.add_edge("schedule", "log_memory")
    g.add_edge("log_memory", END)
    return g


# For `langgraph.json` / LangGraph Studio, and for direct use: no checkpointer.
graph = studio_graph(build(), GRAPH)
