"""Value objects and structured LLM output of the goal and mission workflows."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ValueCategory = Literal["health", "craft", "growth", "connection"]
GoalStatus = Literal["active", "paused", "completed", "archived"]
Energy = Literal["low", "medium", "high"]
MissionStatus = Literal["pending", "in_progress", "completed", "deferred", "archived"]
MissionKind = Literal["regular", "self_care", "challenge", "celebration", "quest"]
AdaptivePath = Literal["self_care", "challenge", "celebration", "triad"]


class Goal(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    title: str
    description: str = ""
    value_category: ValueCategory
    target_date: dt.date | None = None
    status: GoalStatus = "active"
    emotional_driver: str | None = None
    created_at: dt.datetime | None = None


class Mission(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    goal_id: str | None = None
    milestone_id: str | None = None
    title: str
    description: str = ""
    estimated_minutes: int
    energy_level: Energy
    value_category: str | None = None
    priority_score: float = 0.0
    status: MissionStatus = "pending"
    kind: MissionKind = "regular"
    first_step: str | None = None
    created_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None


# --- structured LLM output -------------------------------------------------------------------


class GoalAnalysis(BaseModel):
    """Step 2 of the decomposition: how big the goal is."""

    complexity: Literal["low", "medium", "high"]
    estimated_weeks: int = Field(ge=1, le=104)
    milestone_count: int = Field(ge=3, le=7, description="How many milestones, 3-7")
    themes: list[str] = Field(default_factory=list, max_length=8)
    rationale: str = Field(max_length=600)


class MilestoneDraft(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=1000)


class MilestonePlan(BaseModel):
    milestones: list[MilestoneDraft] = Field(min_length=3, max_length=7)


class MissionDraft(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=1000)
    estimated_minutes: int = Field(ge=5, le=120)
    energy_level: Energy


class MissionPlan(BaseModel):
    missions: list[MissionDraft] = Field(min_length=1, max_length=5)


class MissionPrep(BaseModel):
    """process_missions: one small, concrete first step and a line of encouragement."""

    first_step: str = Field(min_length=1, max_length=300)
    encouragement: str = Field(min_length=1, max_length=300)


class ChallengeDraft(MissionDraft):
    """adaptive_mission's challenge path: one stretching mission toward an active goal."""

    why: str = Field(min_length=1, max_length=300, description="Why this stretches the user, one sentence")
