"""Typed state of the process_missions graph (seed Pattern 5: batched parallel execution), and
the model's answer for one mission (`MissionPrep`).

Everything in this state is plain JSON-like data (str, bool, float, None, dicts and lists of
them): the Postgres checkpointer's strict msgpack allow-list needs no new entry, and a run's
result can be stored as JSON on its `runs` row as it is.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from state.reducers import merge_keyed

MAX_BATCH = 100  # past ~100 `Send` tasks a fan-out costs superlinear time (FIELD-NOTES)


class MissionPrep(BaseModel):
    """process_missions: one small, concrete first step and a line of encouragement."""

    first_step: str = Field(min_length=1, max_length=300)  # stored on the mission
    encouragement: str = Field(min_length=1, max_length=300)  # asked for with the step (not stored)


class MissionResult(TypedDict):
    """What happened to one mission. `ok` results carry the stored first step and priority;
    failed ones carry a `reason` that is safe to show to the user."""

    mission_id: str  # as given (canonical UUID text when it is one)
    ok: bool  # prepared and stored
    reason: str | None  # why not, safe to show (None when ok)
    first_step: str | None  # the stored first step (None when failed)
    priority_score: float | None  # the recomputed priority (None when failed)


class ProcessingInput(TypedDict):
    mission_ids: list[str]  # 1-100 ids; duplicates are processed once


class ProcessingOutput(TypedDict):
    results: list[MissionResult]  # one per distinct id, in input (first occurrence) order
    processed: int  # results with ok=True
    failed: int  # results with ok=False


class ProcessingState(ProcessingInput, total=False):
    batch: list[str]  # distinct ids, canonical form, input order (set by plan_batch)
    # mission id -> its result, written by each parallel task (or its error handler)
    outcomes: Annotated[dict[str, MissionResult], merge_keyed]
    results: list[MissionResult]  # see ProcessingOutput
    processed: int  # see ProcessingOutput
    failed: int  # see ProcessingOutput


class MissionTask(TypedDict):
    """The `Send` payload of one `process_one` task: only the id, so a 100-wide fan-out stays
    small in the checkpoint (each pending send is stored with it)."""

    mission_id: str  # the mission this task prepares
