"""Request and response models of the HTTP API (separate from graph state)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.validation import Text

MESSAGE = Field(min_length=1, max_length=5000, description="The user's message, 1-5000 chars")


# Every request string is `Text`: one check (core/text.py) rejects what Postgres cannot store.


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ChatRequest(Strict):
    message: Text = MESSAGE
    thread_id: uuid.UUID | None = None


class CompanionChatRequest(Strict):
    message: Text = MESSAGE
    conversation_id: uuid.UUID | None = None


class EmotionOut(BaseModel):
    dominant: str
    scores: dict[str, float]


class MemoryOut(BaseModel):
    id: str
    tier: str
    content: str
    score: float


class UsageOut(BaseModel):
    input_tokens: int
    output_tokens: int
    cost_usd: float


class ChatResponse(BaseModel):
    thread_id: str
    reply: str
    emotion: EmotionOut
    memories: list[MemoryOut]
    progress: dict[str, Any]
    usage: UsageOut
    degraded: list[str]


class CompanionAccepted(BaseModel):
    conversation_id: str
    status: Literal["processing"] = "processing"


class MemoryCreate(Strict):
    content: Text = Field(min_length=1, max_length=2000)
    tags: list[Annotated[Text, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )


class MemoryItem(BaseModel):
    id: str
    tier: str
    content: str
    score: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str | None = None
    accessed_at: str | None = None
    access_count: int | None = None


class MemoryCreated(BaseModel):
    id: str
    merged: bool


# --- goals and missions ---------------------------------------------------------------------

ValueCategory = Literal["health", "craft", "growth", "connection"]


class GoalCreate(Strict):
    title: Text = Field(min_length=1, max_length=200)
    description: Text = Field("", max_length=2000)
    value_category: ValueCategory
    target_date: dt.date | None = None


class GoalPatch(Strict):
    title: Text | None = Field(None, min_length=1, max_length=200)
    description: Text | None = Field(None, max_length=2000)
    value_category: ValueCategory | None = None
    target_date: dt.date | None = None
    status: Literal["active", "paused", "completed", "archived"] | None = None

    @model_validator(mode="after")
    def _something(self) -> GoalPatch:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give at least one field")
        for name in ("title", "value_category", "status"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class MissionComplete(Strict):
    minutes: int | None = Field(None, ge=1, le=600, description="Minutes actually spent")


class ProcessRequest(Strict):
    mission_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)


# --- narrative, insights, nudges --------------------------------------------------------------


class BeatRequest(Strict):
    goal_id: uuid.UUID


class InsightRequest(Strict):
    week: Text | None = Field(
        None, pattern=r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$", description="ISO week, e.g. 2026-W48"
    )
