"""State of the goal_creation workflow (seed: Epic 2 + Epic 3). Its values include the `Goal`
entity and the models of `state.schemas` (all on the checkpointer's allow-list)."""

from __future__ import annotations

import operator
from typing import Annotated

from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from state.goals import Goal
from state.schemas import Emotion, MemoryHit


class GoalCreationInput(TypedDict):
    goal_id: str  # chosen by the caller, so a retried run creates the same goal once
    title: str  # 1-200 characters
    description: str  # why the user wants it (the emotion is read from title and description)
    value_category: str  # health, craft, growth or connection
    target_date: str | None  # ISO date, if the user gave one


class GoalCreationOutput(TypedDict, total=False):
    goal: Goal  # the goal as stored
    emotion: Emotion  # the emotion behind it (its `emotional_driver` is the dominant label)
    similar_goals: list[MemoryHit]  # project memories of similar past goals
    decomposition_run_id: str  # the background run planning its milestones and missions
    degraded: list[str]  # branches that fell back to their default


class GoalCreationState(GoalCreationInput, total=False):
    emotion: Emotion  # see GoalCreationOutput
    similar_goals: list[MemoryHit]  # see GoalCreationOutput
    goal: Goal  # see GoalCreationOutput
    memory_id: str  # the project memory that remembers the goal
    decomposition_run_id: str  # see GoalCreationOutput
    notified: bool  # the "goal created" notification is recorded
    degraded: Annotated[list[str], operator.add]  # see GoalCreationOutput
