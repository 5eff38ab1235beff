"""The process_missions graph (seed Pattern 5: batched parallel execution with a limit).

    START ── plan_batch ──Send (one per id)──▶ process_one ── summarize ── END
                                        ╰─ on failure: mission_failed ─▶ summarize

Input `{"mission_ids": [str, ...]}` (1-100; duplicates processed once). Output
`{"results": [{"mission_id", "ok", "reason", "first_step", "priority_score"}, ...],
"processed": n_ok, "failed": n_failed}`, results in input order.

The concurrency limit is LangGraph's `max_concurrency` RUN config, not part of the compiled
graph: a caller either passes `run_config(settings)` in each run's config, e.g.

    await graph.ainvoke(inputs, {**run_config(settings), "configurable": {...}}, context=ctx)

(the registry's `Workflow.run_config` hook does this for the API and background runs), or
compiles with `graphs.registry.compile_workflow`, which binds it with `.with_config`. A run without it still
works but fans out every mission at once (plan_batch logs a warning).
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from core.settings import Settings, get_settings
from nodes.context import Context, studio_graph
from nodes.kit import DB_RETRY
from nodes.process_missions import GRAPH, mission_failed, plan_batch, process_one, summarize
from state.process_missions import MissionTask, ProcessingInput, ProcessingOutput, ProcessingState

__all__ = ["GRAPH", "build", "graph", "run_config"]


def run_config(settings: Settings) -> RunnableConfig:
    """The run config this graph needs: at most `MISSION_CONCURRENCY` missions in flight."""
    return {"max_concurrency": settings.mission_concurrency}


def fan_out(state: ProcessingState) -> list[Send]:
    """One `process_one` task per distinct mission; LangGraph's `max_concurrency` (run config)
    bounds how many run at once, like the seed's semaphore."""
    return [Send("process_one", MissionTask(mission_id=mid)) for mid in state["batch"]]


def build(
    settings: Settings | None = None,
) -> StateGraph[ProcessingState, Context[Any], ProcessingInput, ProcessingOutput]:
    g = StateGraph(
        ProcessingState,
        context_schema=Context,
        input_schema=ProcessingInput,
        output_schema=ProcessingOutput,
    )
    g.add_node(plan_batch)
    # Transient database trouble gets one more quick attempt of the whole mission.
    g.add_node(process_one, retry_policy=DB_RETRY, error_handler=mission_failed)
    g.add_node(summarize)
    g.add_edge(START, "plan_batch")
    g.add_conditional_edges("plan_batch", fan_out, ["process_one"])
    g.add_edge("process_one", "summarize")
    g.add_edge("summarize", END)
    return g


# For `langgraph.json` / LangGraph Studio: no checkpointer (the platform brings its own); the
# limit is bound here too, so Studio runs behave like the service's.
graph = studio_graph(build(), GRAPH).with_config(run_config(get_settings()))
