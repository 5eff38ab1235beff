"""State of the weekly_quests workflow (seed: "Sequential Multi-Step Job"), and the quests it asks
the LLM for. The goals, quests and missions in this state are pydantic models: they are on the
checkpointer's allow-list (every model of the `state` package is), and a retried job resumes
with them as written."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from domain.missions import Energy
from state.goals import Goal, Mission


class QuestDraft(BaseModel):
    title: str = Field(min_length=1, max_length=200)  # the quest, in a few words
    description: str = Field("", max_length=600)  # what to do, fitted to the user's patterns
    estimated_minutes: int = Field(ge=5, le=120)  # the domain's mission length
    energy_level: Energy  # low, medium or high
    goal_index: int = Field(0, ge=0, description="Index of the goal in the list given, 0-based")


class QuestPlan(BaseModel):
    """weekly_quests: this week's quests, fitted to how the user actually works."""

    quests: list[QuestDraft] = Field(min_length=1, max_length=3)  # 1-3 quests


class WeeklyQuestsInput(TypedDict):
    week: str  # ISO week, e.g. "2026-W48"


class WeeklyQuestsState(WeeklyQuestsInput, total=False):
    goals: list[Goal]  # up to three active goals, the ones the quests serve
    patterns: dict[str, Any]  # how the user works: best weekdays, session length, completion rate
    quests: list[QuestDraft]  # the model's quests
    missions: list[Mission]  # the quests as stored missions (kind "quest")
    notified: bool  # the "quests ready" notification is recorded
    reason: str  # why no quests (no active goals), or how many were created


class WeeklyQuestsOutput(TypedDict, total=False):
    week: str  # see WeeklyQuestsInput
    missions: list[Mission]  # see WeeklyQuestsState
    reason: str  # see WeeklyQuestsState
