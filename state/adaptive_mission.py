"""Typed state of the adaptive_mission graph (seed Pattern 3: conditional branching), and the
challenge path's structured LLM output.

Everything in the state is plain JSON (missions and the emotion as dicts), so a checkpointed run
(the background runner's `run:<id>` threads) needs no extra types on the strict msgpack allow-list.
The TypedDicts come from `typing_extensions`: on Python 3.11 pydantic can build the JSON schemas
LangGraph serves (input, output, state) only from those, not from `typing.TypedDict`.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypeAlias

from pydantic import Field
from typing_extensions import TypedDict

from domain.missions import Energy, Path
from state.goal_decomposition import MissionDraft

AdaptivePath: TypeAlias = Path  # the four paths of seed Pattern 3


class ChallengeDraft(MissionDraft):
    """adaptive_mission's challenge path: one stretching mission toward an active goal."""

    why: str = Field(min_length=1, max_length=300, description="Why this stretches the user, one sentence")


class AdaptiveInput(TypedDict, total=False):
    # What the user says they feel right now; None or blank: read their latest chat messages.
    feeling: str | None


class AdaptiveOutput(TypedDict, total=False):
    path: AdaptivePath  # the one path taken: self_care, challenge, celebration or triad
    reason: str  # why this path, with the numbers it was decided on
    missions: list[dict[str, Any]]  # `Mission.model_dump(mode="json")` each
    emotion: dict[str, Any]  # {"dominant": str, "scores": {label: 0-1}}
    energy: Energy  # the energy the decision used (the stated feeling may change the assessed one)
    completed_last_day: int  # missions completed in the 24 h before the run's clock
    degraded: list[str]  # nodes that fell back to a default value


class AdaptiveState(AdaptiveInput, AdaptiveOutput, total=False):
    # Written by any of the parallel branches (and a path's own fallback), hence the reducer.
    degraded: Annotated[list[str], operator.add]
    # What the energy estimate was computed from: minutes_today, completed_today, and the
    # recorded emotion's dominant label (None when nothing was recorded in the last 24 h).
    energy_basis: dict[str, Any]
