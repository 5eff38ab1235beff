"""Nodes of process_missions (seed Pattern 5: batched parallel execution with a limit).

    plan_batch: validate and de-duplicate the ids (in input order)
    process_one (one `Send` task per mission, at most `max_concurrency` at once): load the
        mission (owner-scoped), refuse finished ones, recompute its priority, ask the cheap
        model for a `MissionPrep`, store the first step and the priority
    summarize: the results in input order, and the counts

Where failures are caught (one failing mission must not stop the others):
- Refusals that are answers, not errors (the mission is not found / not the user's, or it is
  completed or archived), are returned by `process_one` itself as a failed result: nothing to
  retry, nothing to warn about.
- Everything unexpected (model errors left after the gateway's retries, `ModelOutputInvalid`,
  a database error left after the node's `RetryPolicy`, a node timeout) goes to the node's
  `error_handler`, `mission_failed`. Catching those inside the node would hide them from the
  node's retry policy and could not catch a node timeout at all (LangGraph cancels the node and
  raises `NodeTimeoutError` outside its body). The handler runs in the same superstep with the
  failed task's own `Send` payload, records the failure under that mission's id, and must
  return `Command(update=..., goto="summarize")`: a plain update would not follow the failed
  node's edges, so a batch where every mission failed would end without a summary.
"""

from __future__ import annotations

import uuid
from typing import Protocol

import openai
from langgraph.config import get_config
from langgraph.errors import NodeError, NodeTimeoutError
from langgraph.runtime import Runtime
from langgraph.types import Command, Overwrite

from core.errors import DelightError, Invalid, NotFound
from core.logging import get_logger
from domain.missions import priority_score
from nodes.context import Context
from nodes.kit import Update, context_of, drawn_to, emit, observed
from nodes.ports import GoalsPort, LlmPort, MissionsPort
from prompts.process_missions import prepare_messages
from services.db import DATABASE_ERRORS
from state.process_missions import MAX_BATCH, MissionPrep, MissionResult, MissionTask, ProcessingState

GRAPH = "process_missions"
SITE = "missions.prepare"
REFUSED_STATUSES = ("completed", "archived")

log = get_logger("delight.graph")


class ProcessMissionsServices(Protocol):
    """What process_missions' nodes use of the services."""

    @property
    def llm(self) -> LlmPort: ...
    @property
    def goals(self) -> GoalsPort: ...
    @property
    def missions(self) -> MissionsPort: ...


ProcessRuntime = Runtime[Context[ProcessMissionsServices]]


def ok(mission_id: str, first_step: str, priority: float) -> MissionResult:
    return {
        "mission_id": mission_id,
        "ok": True,
        "reason": None,
        "first_step": first_step,
        "priority_score": priority,
    }


def failure(mission_id: str, reason: str) -> MissionResult:
    return {
        "mission_id": mission_id,
        "ok": False,
        "reason": reason,
        "first_step": None,
        "priority_score": None,
    }


def canonical(mission_id: str) -> str:
    """The canonical text of a UUID (so `ABC…` and `abc…` are one mission); anything that is not
    a UUID is kept as given and will be reported as not found."""
    try:
        return str(uuid.UUID(mission_id))
    except ValueError:
        return mission_id


def reason_for(err: BaseException) -> str:
    """A failure reason safe to show to the user (no SQL, no provider payloads)."""
    if isinstance(err, DelightError):
        return err.message
    if isinstance(err, NodeTimeoutError):
        return "timed out"
    if isinstance(err, openai.APIError):
        return f"model call failed ({type(err).__name__})"
    if isinstance(err, DATABASE_ERRORS):
        return "database unavailable"
    return f"internal error ({type(err).__name__})"


@observed(GRAPH)
async def plan_batch(state: ProcessingState, runtime: ProcessRuntime) -> Update:
    ids = state.get("mission_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_BATCH:
        raise Invalid(f"mission_ids must be a list of 1-{MAX_BATCH} mission ids")
    if not all(isinstance(i, str) for i in ids):
        raise Invalid("mission_ids must be strings")
    if not get_config().get("max_concurrency"):
        log.warning(
            "process_missions runs without a concurrency limit: apply graphs.process_missions.run_config",
            extra={"graph": GRAPH, "thread_id": runtime.context.thread_id, "missions": len(ids)},
        )
    # A new batch on a reused thread starts from no outcomes.
    return {"batch": list(dict.fromkeys(canonical(i) for i in ids)), "outcomes": Overwrite({})}


@observed(GRAPH)
async def process_one(state: MissionTask, runtime: ProcessRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    user = ctx.user_id
    mid = state["mission_id"]
    try:
        mission = await svc.missions.get(user, uuid.UUID(mid))
    except (ValueError, NotFound):  # not a UUID, not there, or someone else's: never say which
        return {"outcomes": {mid: failure(mid, "mission not found")}}
    if mission.status in REFUSED_STATUSES:
        return {"outcomes": {mid: failure(mid, f"mission is {mission.status}")}}

    goal = await svc.goals.get(user, uuid.UUID(mission.goal_id)) if mission.goal_id else None
    priority = priority_score(
        estimated_minutes=mission.estimated_minutes,
        created_at=mission.created_at or ctx.now,
        now=ctx.now,
        target_date=goal.target_date if goal else None,
    )
    prep, _ = await svc.llm.structured(
        MissionPrep,
        prepare_messages(
            title=mission.title,
            description=mission.description,
            estimated_minutes=mission.estimated_minutes,
            energy_level=mission.energy_level,
            goal_title=goal.title if goal else None,
        ),
        site=SITE,
        user_id=str(user),
    )
    # Idempotent (an UPDATE of two columns): a resumed or repeated run writes the same row again.
    await svc.missions.set_prep(user, uuid.UUID(mid), first_step=prep.first_step, priority=priority)
    return {"outcomes": {mid: ok(mid, prep.first_step, priority)}}


async def mission_failed(state: MissionTask, error: NodeError, runtime: ProcessRuntime) -> Command[str]:
    """`process_one`'s error handler (after its retries): this mission failed, the batch goes on."""
    ctx = await context_of(runtime)
    mid = state["mission_id"]
    reason = reason_for(error.error)
    log.warning(
        "mission failed",
        extra={
            "graph": GRAPH,
            "node": error.node,
            "thread_id": ctx.thread_id,
            "mission_id": mid,
            "outcome": "failed",
            "reason": reason,
            "error": repr(error.error),
        },
    )
    # No `ms`: parallel tasks of one node share `ctx.started`, so no honest duration is known here.
    emit(runtime, {"type": "step", "node": error.node, "status": "failed", "mission_id": mid})
    return Command(update={"outcomes": {mid: failure(mid, reason)}}, goto="summarize")


drawn_to(mission_failed, "summarize")


@observed(GRAPH)
async def summarize(state: ProcessingState, runtime: ProcessRuntime) -> Update:
    outcomes = state.get("outcomes") or {}
    # Every task writes its outcome (node or handler); the default only guards the contract.
    results = [outcomes.get(mid) or failure(mid, "not processed") for mid in state["batch"]]
    processed = sum(1 for r in results if r["ok"])
    return {"results": results, "processed": processed, "failed": len(results) - processed}
