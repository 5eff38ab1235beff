"""Request and response models of the HTTP API (separate from graph state)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from api.validation import Storable, Text

MESSAGE = Field(min_length=1, max_length=5000, description="The user's message, 1-5000 chars")


# Every request string is `Text`: one check (core/text.py) rejects what Postgres cannot store.


def _date_text(value: object) -> object:
    # Lax pydantic reads a number as a Unix time; a JSON date is only ever "YYYY-MM-DD".
    if not isinstance(value, str | dt.date):
        raise PydanticCustomError("date_type", "Input should be a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_date_text)]
"""A request date: the text YYYY-MM-DD, not a number."""


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
    tags: list[Annotated[str, Field(min_length=1, max_length=64), Storable]] = Field(
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
    target_date: IsoDate | None = None


GoalStatus = Literal["active", "paused", "completed", "archived"]


def _not_null(schema: dict[str, Any]) -> Any:
    """The documented schema of a patch field that may be absent but not null."""
    return WithJsonSchema(schema)


def _patch_schema(schema: dict[str, Any]) -> None:
    """Absent is not null: no `default: null` on a field that refuses null."""
    for prop in schema.get("properties", {}).values():
        if "anyOf" not in prop:
            prop.pop("default", None)


class GoalPatch(Strict):
    """The fields to change; absent ones stay as they are (`{}` changes nothing and answers the
    goal). `description` and `target_date` can be cleared with null; the others cannot."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _patch_schema(schema))

    title: Annotated[
        Text | None,
        Field(min_length=1, max_length=200),
        _not_null({"type": "string", "minLength": 1, "maxLength": 200}),
    ] = None
    description: Text | None = Field(None, max_length=2000)
    value_category: Annotated[
        ValueCategory | None, _not_null({"type": "string", "enum": list(get_args(ValueCategory))})
    ] = None
    target_date: IsoDate | None = None
    status: Annotated[
        GoalStatus | None, _not_null({"type": "string", "enum": list(get_args(GoalStatus))})
    ] = None

    @model_validator(mode="after")
    def _something(self) -> GoalPatch:
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
    # `Storable` after the pattern: the schema shows the pattern (see `Text`), and the text
    # check still runs first.
    week: Annotated[str, Field(pattern=r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$"), Storable] | None = Field(
        None, description="ISO week, e.g. 2026-W48"
    )


# --- responses ---------------------------------------------------------------------------------
# Response models document bodies without reshaping them: `Out` keeps any field it does not name
# (a workflow's output may carry more than its documented core), and timestamps pass through as
# the text the route produced (`Timestamp`), so declaring a model changes no byte of an answer.


def _iso(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value


Timestamp = Annotated[str, BeforeValidator(_iso), WithJsonSchema({"type": "string", "format": "date-time"})]
Day = Annotated[str, BeforeValidator(_iso), WithJsonSchema({"type": "string", "format": "date"})]


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class HealthDatabase(Out):
    status: Literal["ok", "unavailable"]
    kind: str


class HealthModel(Out):
    kind: str
    description: str


class HealthOut(Out):
    status: Literal["ok", "degraded"] = Field(description="`degraded` (with 503) when the database is down")
    database: HealthDatabase
    model: HealthModel
    embedder: str


class HistoryMessage(Out):
    role: str
    content: str
    timestamp: Timestamp
    # Absent (not null) when the turn completed: the route leaves unset fields out.
    status: str | None = Field(None, description="Present when the turn did not complete")


class Conversation(Out):
    id: str
    created_at: Timestamp
    updated_at: Timestamp
    messages: list[HistoryMessage]


class CompanionHistory(Out):
    conversations: list[Conversation]


class ThreadState(Out):
    thread_id: str
    values: dict[str, Any]
    next: list[str]
    checkpoint_id: str | None
    created_at: Timestamp | None


class ThreadCheckpoint(Out):
    checkpoint_id: str
    parent_checkpoint_id: str | None
    step: int | None
    source: str | None
    next: list[str]
    created_at: Timestamp | None
    messages: int = Field(description="How many messages the state holds at this checkpoint")


class GoalOut(Out):
    id: str
    user_id: str
    title: str
    description: str
    value_category: ValueCategory
    target_date: Day | None
    status: Literal["active", "paused", "completed", "archived"]
    emotional_driver: str | None
    created_at: Timestamp | None


class MissionOut(Out):
    id: str
    goal_id: str | None
    milestone_id: str | None
    title: str
    description: str
    estimated_minutes: int
    energy_level: Literal["low", "medium", "high"]
    value_category: str | None
    priority_score: float
    status: Literal["pending", "in_progress", "completed", "deferred", "archived"]
    kind: str
    first_step: str | None
    created_at: Timestamp | None
    completed_at: Timestamp | None


class MilestoneOut(Out):
    id: str
    sequence: int
    title: str
    description: str
    missions: list[MissionOut]


class GoalDetail(GoalOut):
    milestones: list[MilestoneOut]


class GoalCreated(Out):
    goal: GoalOut
    emotion: dict[str, Any] | None
    similar_goals: list[dict[str, Any]]
    decomposition_run_id: str | None = Field(description="Follow it at /api/v1/runs/{id}/stream")
    degraded: list[str]


class WorkflowOut(Out):
    """A workflow's output: the fields named here, and whatever else the workflow returns."""

    degraded: list[str] | None = Field(None, description="Steps that fell back to a degraded path")


class Decomposition(WorkflowOut):
    run_id: str


class Triad(Out):
    missions: list[MissionOut]
    missing_levels: list[Literal["high", "medium", "low"]]


class AdaptiveMissions(WorkflowOut):
    path: Any = None
    reason: Any = None
    missions: list[Any] | None = None


class Created(WorkflowOut):
    created: bool | None = Field(None, description="True (and 201) when written by this request")


class ProgressOut(Out):
    window_days: int
    completed: int
    skipped: int
    streak_days: int
    dci: float
    zone: Literal["red", "yellow", "green"]
    terms: dict[str, float]


class BeatOut(Out):
    id: str
    goal_id: str
    beat_type: str
    trigger_key: str
    title: str
    text: str
    teaser: str | None
    unlocks: list[str]
    created_at: Timestamp


class QuestOut(Out):
    key: str
    title: str
    description: str
    unlocked_at: Timestamp


class InsightOut(Out):
    id: str
    week: str
    text: str
    dci: float
    stats: dict[str, Any]
    highlight_reel: Any
    created_at: Timestamp


class NudgeOut(Out):
    id: str
    user_id: str
    channel: str
    message: str
    subject: str | None
    send_at: Timestamp
    status: str
    sequence_index: int
    streak_start: Day
    created_at: Timestamp | None
    sent_at: Timestamp | None


class RunOut(Out):
    id: str
    workflow: str
    thread_id: str
    status: Literal["pending", "running", "success", "error", "timeout", "interrupted"]
    attempt: int
    input: Any
    result: Any = Field(description="The workflow's output, once it succeeded")
    error: str | None
    created_at: Timestamp | None
    started_at: Timestamp | None
    ended_at: Timestamp | None
    updated_at: Timestamp | None


class JobsEnqueued(Out):
    job_ids: list[str]
    enqueued: list[str]
    existing: list[str]


class JobStatus(Out):
    job_id: str
    status: str


class UsageDay(Out):
    day: Day
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    models: list[str]


class UsageReport(Out):
    user_id: str
    timezone: str
    budget_usd: float
    today_usd: float
    over_budget: bool
    days: list[UsageDay]
