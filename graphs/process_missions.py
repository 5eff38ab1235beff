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

import psycopg
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy
from psycopg_pool import PoolTimeout

from core.errors import Unavailable
from core.settings import Settings, get_settings
from nodes.context import Context
from nodes.process_missions import GRAPH, fan_out, mission_failed, plan_batch, process_one, summarize
from state.process_missions import ProcessingInput, ProcessingOutput, ProcessingState

__all__ = ["GRAPH", "build", "graph", "run_config"]

# Transient database trouble gets one more quick attempt of the whole mission. Model calls
# retry inside the gateway (services/llm/retry.py) and are not listed: one retry layer per call.
DB_RETRY = RetryPolicy(
    max_attempts=2,
    initial_interval=0.05,
    jitter=True,
    retry_on=(psycopg.OperationalError, PoolTimeout, Unavailable),
)


def run_config(settings: Settings) -> dict[str, Any]:
    """The run config this graph needs: at most `MISSION_CONCURRENCY` missions in flight."""
    return {"max_concurrency": settings.mission_concurrency}


def build(settings: Settings | None = None) -> StateGraph:
    g = StateGraph(
        ProcessingState,
        context_schema=Context,
        input_schema=ProcessingInput,
        output_schema=ProcessingOutput,
    )
    g.add_node(plan_batch)
    g.add_node(process_one, retry_policy=DB_RETRY, error_handler=mission_failed)
    g.add_node(summarize)
    g.add_edge(START, "plan_batch")
    g.add_conditional_edges("plan_batch", fan_out, ["process_one"])
    g.add_edge("process_one", "summarize")
    g.add_edge("summarize", END)
    return g


# For `langgraph.json` / LangGraph Studio: no checkpointer (the platform brings its own); the
# limit is bound here too, so Studio runs behave like the service's.
graph = build().compile(name=GRAPH).with_config(run_config(get_settings()))
