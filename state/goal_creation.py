"""State of the goal_creation workflow (seed: Epic 2 + Epic 3)."""

from __future__ import annotations

import operator
from typing import Annotated

from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from state.goals import Goal
from state.schemas import Emotion, MemoryHit


class GoalCreationInput(TypedDict):
    goal_id: str  # chosen by the caller, so a retried run creates the same goal once
    title: str
    description: str
    value_category: str
    target_date: str | None


class GoalCreationOutput(TypedDict, total=False):
    goal: Goal
    emotion: Emotion
    similar_goals: list[MemoryHit]
    decomposition_run_id: str
    degraded: list[str]


class GoalCreationState(GoalCreationInput, total=False):
    emotion: Emotion
    similar_goals: list[MemoryHit]
    goal: Goal
    memory_id: str
    decomposition_run_id: str
    notified: bool
    degraded: Annotated[list[str], operator.add]
