"""Typed state of the process_missions graph (seed Pattern 5: batched parallel execution).

Everything in this state is plain JSON-like data (str, bool, float, None, dicts and lists of
them): the Postgres checkpointer's strict msgpack allow-list needs no new entry, and a run's
result can be stored as JSON on its `runs` row as it is.
"""

from __future__ import annotations

from typing import Annotated

from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

MAX_BATCH = 100  # past ~100 `Send` tasks a fan-out costs superlinear time (FIELD-NOTES)


class MissionResult(TypedDict):
    """What happened to one mission. `ok` results carry the stored first step and priority;
    failed ones carry a `reason` that is safe to show to the user."""

    mission_id: str
    ok: bool
    reason: str | None
    first_step: str | None
    priority_score: float | None


def merge_outcomes(
    left: dict[str, MissionResult] | None, right: dict[str, MissionResult] | None
) -> dict[str, MissionResult]:
    """Reducer for the parallel `process_one` tasks: each writes `{mission_id: result}`.
    Keyed by id, so a task re-run on resume replaces its own entry instead of adding one."""
    return {**(left or {}), **(right or {})}


class ProcessingInput(TypedDict):
    mission_ids: list[str]  # 1-100 ids; duplicates are processed once


class ProcessingOutput(TypedDict):
    results: list[MissionResult]  # one per distinct id, in input (first occurrence) order
    processed: int  # results with ok=True
    failed: int  # results with ok=False


class ProcessingState(ProcessingInput, total=False):
    batch: list[str]  # distinct ids, canonical form, input order (set by plan_batch)
    outcomes: Annotated[dict[str, MissionResult], merge_outcomes]
    results: list[MissionResult]
    processed: int
    failed: int


class MissionTask(TypedDict):
    """The `Send` payload of one `process_one` task: only the id, so a 100-wide fan-out stays
    small in the checkpoint (each pending send is stored with it)."""

    mission_id: str
