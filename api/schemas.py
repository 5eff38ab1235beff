"""Request and response models of the HTTP API (separate from graph state)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MESSAGE = Field(min_length=1, max_length=5000, description="The user's message, 1-5000 chars")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ChatRequest(Strict):
    message: str = MESSAGE
    thread_id: uuid.UUID | None = None


class CompanionChatRequest(Strict):
    message: str = MESSAGE
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
    content: str = Field(min_length=1, max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=20)


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
