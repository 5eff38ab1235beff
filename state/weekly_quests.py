"""State and structured output of the background-job workflows."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from state.goals import Energy, Goal, Mission


def merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class QuestDraft(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=600)
    estimated_minutes: int = Field(ge=5, le=120)
    energy_level: Energy
    goal_index: int = Field(0, ge=0, description="Index of the goal in the list given, 0-based")


class QuestPlan(BaseModel):
    """weekly_quests: this week's quests, fitted to how the user actually works."""

    quests: list[QuestDraft] = Field(min_length=1, max_length=3)


class WeeklyQuestsInput(TypedDict):
    week: str  # ISO week, e.g. "2026-W48"


class WeeklyQuestsState(WeeklyQuestsInput, total=False):
    goals: list[Goal]
    patterns: dict[str, Any]
    quests: list[QuestDraft]
    missions: list[Mission]
    notified: bool
    reason: str


class WeeklyQuestsOutput(TypedDict, total=False):
    week: str
    missions: list[Mission]
    reason: str


class MaintenanceInput(TypedDict):
    day: str  # ISO date the run is for (UTC)


class MaintenanceState(MaintenanceInput, total=False):
    # Each parallel task writes its own key: {"ok": bool, ...}; failures are isolated.
    results: Annotated[dict[str, Any], merge]
    failed: Annotated[list[str], operator.add]
