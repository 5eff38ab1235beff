"""goal_decomposition (seed Pattern 2: sequential pipeline, "waterfall").

    START ── load_goal ─┬─ (goal already planned) ──────────────────────────────── END
                        └─ analyse_goal ── plan_milestones ─┬─ plan_missions (1) ─┐
                                                            ├─ plan_missions (2) ─┼─ store_plan ── END
                                                            └─ plan_missions (n) ─┘

Input `{"goal_id": str}` (the user is the run's `Context.user_id`; someone else's goal is
NotFound). Output `{"goal_id", "created", "milestones", "missions", "plan", "complexity"}`.

Each step needs the one before; only the missions of the 3-7 milestones are planned in
parallel, one `Send` task per milestone, gathered by a reducer keyed by milestone sequence.
Every `plan_missions` task streams a custom event as soon as its missions are planned:

    {"type": "milestone", "sequence": 2, "title": "...",
     "missions": [{"title": "...", "estimated_minutes": 25, "energy_level": "medium"}, ...]}

(besides the `{"type": "step", ...}` event every node emits). Model output that fails the
schema is retried with the error fed back by the gateway, then the run fails with
`ModelOutputInvalid`; `store_plan` is the last step and the only write, so a failed run stores
nothing. A re-run (or a concurrent run) for the same goal keeps the stored plan.

Concurrency limit: the per-milestone model calls run at most `settings.decompose_concurrency`
at a time through LangGraph's `max_concurrency` run config (it caps the tasks of any one
superstep; only the `plan_missions` step has more than one). A plain `build().compile()` has no
limit; hosts compile it with `graphs.registry.compile_workflow`, which binds it, or pass it
with each call:

    await graph.ainvoke(inputs, {**config, **run_config(s)}, context=ctx)

A limit bound with `with_config` survives a per-call config that does not set its own
`max_concurrency` (the engine, the worker, the tests).
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from core.settings import Settings, get_settings
from nodes.context import Context, studio_graph
from nodes.goal_decomposition import (
    GRAPH,
    analyse_goal,
    load_goal,
    plan_milestones,
    plan_missions,
    store_plan,
)
from nodes.kit import DB_RETRY  # one quick retry on transient DB errors; both DB steps are idempotent
from state.goal_decomposition import (
    DecompositionInput,
    DecompositionOutput,
    DecompositionState,
    MilestoneTask,
)

__all__ = ["GRAPH", "build", "graph", "run_config"]


def run_config(settings: Settings | None = None) -> RunnableConfig:
    """The run config that caps the parallel `plan_missions` calls at
    `settings.decompose_concurrency` (LangGraph's `max_concurrency`)."""
    s = settings or get_settings()
    return {"max_concurrency": s.decompose_concurrency}


def after_load(state: DecompositionState) -> Literal["analyse_goal", "__end__"]:
    """A goal that already has a plan is answered as stored (no model call)."""
    return "__end__" if state.get("has_plan") else "analyse_goal"


def fan_out(state: DecompositionState) -> list[Send]:
    """One `plan_missions` task per milestone. They run in one superstep, at most
    `max_concurrency` at a time (`run_config`)."""
    milestones = state["milestone_plan"]
    outline = [m["title"] for m in milestones]
    return [
        Send(
            "plan_missions",
            MilestoneTask(
                goal=state["goal"],
                analysis=state["analysis"],
                sequence=i,
                total=len(milestones),
                milestone=m,
                others=outline,
            ),
        )
        for i, m in enumerate(milestones, start=1)
    ]


def build(
    settings: Settings | None = None,
) -> StateGraph[DecompositionState, Context[Any], DecompositionInput, DecompositionOutput]:
    # `settings` is accepted like every graph's `build`; the limit travels in `run_config`.
    g = StateGraph(
        DecompositionState,
        context_schema=Context,
        input_schema=DecompositionInput,
        output_schema=DecompositionOutput,
    )
    g.add_node(load_goal, retry_policy=DB_RETRY)
    g.add_node(analyse_goal)
    g.add_node(plan_milestones)
    g.add_node(plan_missions, input_schema=MilestoneTask)
    g.add_node(store_plan, retry_policy=DB_RETRY)
    g.add_edge(START, "load_goal")
    g.add_conditional_edges("load_goal", after_load, ["analyse_goal", END])
    g.add_edge("analyse_goal", "plan_milestones")
    g.add_conditional_edges("plan_milestones", fan_out, ["plan_missions"])
    g.add_edge("plan_missions", "store_plan")
    g.add_edge("store_plan", END)
    return g


# For `langgraph.json` / LangGraph Studio: no checkpointer (the platform brings its own).
graph = studio_graph(build(), GRAPH)
