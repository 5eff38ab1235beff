"""nightly_maintenance (seed: "Parallel Background Jobs").

    START ─┬─ prune_task_memories ──┐
           ├─ consolidate_progress ─┤
           ├─ update_dci ───────────┼─ report ── END
           └─ check_hidden_quests ──┘

Four independent tasks in one superstep. Each is isolated: a failure is recorded by its error
handler (`results[task].ok = false`) and the others still run; `report` logs every result. The
per-user tasks fan out under JOB_CONCURRENCY with per-user failure isolation.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, StateGraph

from core.settings import Settings
from nodes.context import RunContext, studio_graph
from nodes.kit import Branch, gather
from nodes.nightly_maintenance import (
    GRAPH,
    check_hidden_quests,
    consolidate_progress,
    failed_task,
    prune_task_memories,
    report,
    update_dci,
)
from state.nightly_maintenance import MaintenanceInput, MaintenanceState

__all__ = ["GRAPH", "build", "graph"]

TASKS = (prune_task_memories, consolidate_progress, update_dci, check_hidden_quests)


def build(
    settings: Settings | None = None,
) -> StateGraph[MaintenanceState, RunContext[Any], MaintenanceInput, MaintenanceState]:
    g = StateGraph(MaintenanceState, context_schema=RunContext, input_schema=MaintenanceInput)
    # Each task isolated: a failure is recorded by its handler, and the other tasks go on.
    tasks = [Branch(t, failed_task(t.__name__), retry=False) for t in TASKS]
    gather(g, GRAPH, tasks, join=report, timeout=None)
    g.add_edge("report", END)
    return g


graph = studio_graph(build(), GRAPH)
