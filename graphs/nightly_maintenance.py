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

from langgraph.graph import END, START, StateGraph

from core.settings import Settings
from nodes.context import Context, fallback
from nodes.nightly_maintenance import (
    NIGHTLY,
    check_hidden_quests,
    consolidate_progress,
    failed_task,
    prune_task_memories,
    report,
    update_dci,
)
from state.nightly_maintenance import MaintenanceInput, MaintenanceState

GRAPH = NIGHTLY
TASKS = (prune_task_memories, consolidate_progress, update_dci, check_hidden_quests)


def build(settings: Settings | None = None) -> StateGraph:
    g = StateGraph(MaintenanceState, context_schema=Context, input_schema=MaintenanceInput)
    for task in TASKS:
        name = task.__name__
        g.add_node(task, error_handler=fallback(GRAPH, failed_task(name), then="report"))
        g.add_edge(START, name)
    g.add_node(report)
    g.add_edge([t.__name__ for t in TASKS], "report")
    g.add_edge("report", END)
    return g


graph = build().compile(name=GRAPH)
