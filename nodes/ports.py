"""What nodes need of each store: one `Protocol` per store, listing only the methods nodes call,
with the real store's signature. A workflow's nodes module declares which of them it needs
(e.g. `nodes.chat.ChatServices`); `services.container.Services` satisfies every one (checked by
mypy in graphs/registry.py), and tests/support/fakes.py implements each in memory.

A method added here is a method every fake must grow: add only what a node calls."""

from __future__ import annotations

import builtins
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from domain.narrative import QuestTrigger
from services.llm.gateway import ModelTier, UsageSink
from services.nudges import Activity
from services.writeback import TurnRecord, WriteResult
from state.goal_decomposition import MilestoneDraft, MissionDraft
from state.goals import Goal, Mission
from state.nudges import Nudge
from state.schemas import MemoryHit, Progress, Tier, Usage

M = TypeVar("M", bound=BaseModel)
Json = dict[str, Any]


class LlmPort(Protocol):
    """`services.llm.gateway.ModelGateway`: every model call (retries, structured output, usage)."""

    def model_name(self, tier: ModelTier) -> str: ...

    async def structured(
        self,
        schema: type[M],
        messages: Sequence[BaseMessage],
        *,
        site: str,
        user_id: str | None,
        tier: ModelTier = "cheap",
        sink: UsageSink | None = None,
    ) -> tuple[M, Usage]: ...

    async def stream_text(
        self,
        messages: Sequence[BaseMessage],
        *,
        site: str,
        user_id: str | None,
        tier: ModelTier = "cheap",
        on_token: Callable[[str], None] | None = None,
        sink: UsageSink | None = None,
    ) -> tuple[str, Usage]: ...


class MemoryPort(Protocol):
    """`services.memory.MemoryStore`: the three memory tiers."""

    async def retrieve(
        self,
        user_id: uuid.UUID,
        query: str,
        *,
        now: dt.datetime,
        quotas: dict[str, int] | None = None,
        touch: bool = True,
    ) -> dict[str, list[MemoryHit]]: ...

    async def add(
        self,
        user_id: uuid.UUID,
        tier: Tier,
        content: str,
        metadata: dict[str, Any] | None = None,
        *,
        now: dt.datetime,
        memory_id: uuid.UUID | None = None,
    ) -> tuple[str, bool]: ...

    async def delete(self, user_id: uuid.UUID, memory_id: uuid.UUID) -> None: ...


class ProgressPort(Protocol):
    """`services.progress.ProgressService`: recent progress and the DCI."""

    async def recent(self, user_id: uuid.UUID, tz: str, now: dt.datetime) -> Progress: ...


class WriteBackPort(Protocol):
    """`services.writeback.ChatWriteBack`: a chat turn's one transaction."""

    async def write(self, turn: TurnRecord) -> WriteResult: ...


class GoalsPort(Protocol):
    """`services.goals.Goals`."""

    async def create(
        self,
        user_id: uuid.UUID,
        *,
        goal_id: uuid.UUID,
        title: str,
        description: str,
        value_category: str,
        target_date: dt.date | None,
        emotional_driver: str | None,
    ) -> Goal: ...

    async def get(self, user_id: uuid.UUID, goal_id: uuid.UUID) -> Goal: ...

    async def list(self, user_id: uuid.UUID, status: str | None = None) -> list[Goal]: ...

    async def plan(self, goal_id: uuid.UUID) -> Json: ...

    async def store_plan(
        self,
        goal: Goal,
        milestones: builtins.list[MilestoneDraft],
        missions: builtins.list[builtins.list[MissionDraft]],
        now: dt.datetime,
    ) -> tuple[int, int, bool]: ...


class MissionsPort(Protocol):
    """`services.missions.Missions`."""

    async def list(
        self, user_id: uuid.UUID, status: str | None = None, limit: int = 100
    ) -> list[Mission]: ...

    async def get(self, user_id: uuid.UUID, mission_id: uuid.UUID) -> Mission: ...

    async def create_once(
        self,
        user_id: uuid.UUID,
        mission_id: uuid.UUID,
        *,
        title: str,
        description: str,
        estimated_minutes: int,
        energy_level: str,
        kind: str,
        goal_id: uuid.UUID | None = None,
        value_category: str | None = None,
        priority: float = 0.0,
    ) -> Mission: ...

    async def set_prep(
        self, user_id: uuid.UUID, mission_id: uuid.UUID, *, first_step: str, priority: float
    ) -> None: ...

    async def completed_since(self, user_id: uuid.UUID, since: dt.datetime) -> int: ...

    async def minutes_since(self, user_id: uuid.UUID, since: dt.datetime) -> int: ...


class NotificationsPort(Protocol):
    """`services.notifications.Notifications`."""

    async def record(
        self,
        user_id: uuid.UUID,
        *,
        kind: str,
        title: str,
        body: str = "",
        data: dict[str, Any] | None = None,
        dedupe_key: str | None = None,
    ) -> None: ...


class RunsPort(Protocol):
    """`services.runs.RunStore`: what a node may start (a background run)."""

    async def start_background(
        self,
        workflow: str,
        *,
        run_id: uuid.UUID,
        thread_id: str,
        user_id: uuid.UUID | None,
        input: Any,
        timezone: str = "UTC",
    ) -> object: ...


class AdaptiveReadsPort(Protocol):
    """`services.adaptive.AdaptiveReads`."""

    async def recent_user_messages(
        self, user_id: uuid.UUID, *, since: dt.datetime, until: dt.datetime, limit: int = 3
    ) -> list[str]: ...

    async def latest_emotion_scores(
        self, user_id: uuid.UUID, *, since: dt.datetime, until: dt.datetime
    ) -> dict[str, float] | None: ...

    async def completed_missions_since(
        self, user_id: uuid.UUID, since: dt.datetime, limit: int = 50
    ) -> list[Mission]: ...


class InsightsPort(Protocol):
    """`services.insights.InsightStore`."""

    async def task_memories(
        self, user_id: uuid.UUID, *, since: dt.datetime, until: dt.datetime, now: dt.datetime
    ) -> list[Json]: ...

    async def week_stats(
        self, user_id: uuid.UUID, *, tz: str, since: dt.datetime, until: dt.datetime
    ) -> Json: ...

    async def get(self, user_id: uuid.UUID, week: str) -> Json | None: ...

    async def store(
        self,
        user_id: uuid.UUID,
        *,
        insight_id: uuid.UUID,
        week: str,
        text: str,
        dci: float,
        stats: Json,
    ) -> tuple[Json, bool]: ...

    async def set_highlight_reel(self, user_id: uuid.UUID, week: str, reel: Json) -> Json | None: ...


class NarrativePort(Protocol):
    """`services.narrative.NarrativeStore`."""

    async def project_memories(
        self, user_id: uuid.UUID, goal_id: uuid.UUID, *, now: dt.datetime, limit: int = 10
    ) -> list[Json]: ...

    async def tagged_memories(
        self, user_id: uuid.UUID, tag: str, *, now: dt.datetime, limit: int = 5
    ) -> list[Json]: ...

    async def goal_progress(
        self, user_id: uuid.UUID, goal_id: uuid.UUID, *, now: dt.datetime, skip_window_days: int = 7
    ) -> Json: ...

    async def beat_for_trigger(
        self, user_id: uuid.UUID, goal_id: uuid.UUID, trigger_key: str
    ) -> Json | None: ...

    async def get_beat(self, user_id: uuid.UUID, beat_id: uuid.UUID) -> Json | None: ...

    async def insert_beat(
        self,
        user_id: uuid.UUID,
        *,
        beat_id: uuid.UUID,
        goal_id: uuid.UUID,
        beat_type: str,
        trigger_key: str,
        text: str,
        unlocks: Sequence[str],
        now: dt.datetime,
    ) -> tuple[Json, bool]: ...

    async def record_unlocks(
        self, user_id: uuid.UUID, quests: Sequence[QuestTrigger], *, now: dt.datetime
    ) -> list[str]: ...


class NudgesPort(Protocol):
    """`services.nudges.NudgeStore`."""

    async def preferences(self, user_id: uuid.UUID) -> Json: ...

    async def last_activity(self, user_id: uuid.UUID, now: dt.datetime) -> Activity: ...

    async def tally(
        self, user_id: uuid.UUID, *, streak_start: dt.date, day: dt.date, tz: str
    ) -> tuple[int, int]: ...

    async def by_key(self, user_id: uuid.UUID, key: str) -> Nudge | None: ...

    async def create(
        self,
        user_id: uuid.UUID,
        *,
        key: str,
        channel: str,
        message: str,
        subject: str | None,
        send_at: dt.datetime,
        sequence_index: int,
        streak_start: dt.date,
    ) -> tuple[Nudge, bool]: ...


class MaintenancePort(Protocol):
    """`services.maintenance.Maintenance`: the background jobs' reads and writes."""

    async def users(self) -> list[Json]: ...

    async def prune_expired_task_memories(self, now: dt.datetime) -> int: ...

    async def consolidate_week(self, week: str, start: dt.datetime, end: dt.datetime) -> int: ...

    async def store_dci(self, user_id: uuid.UUID, day: dt.date, progress: Progress) -> None: ...

    async def quest_stats(self, user_id: uuid.UUID) -> Json: ...

    async def unlock(self, user_id: uuid.UUID, key: str, title: str, description: str) -> bool: ...

    async def completion_patterns(self, user_id: uuid.UUID, tz: str, now: dt.datetime) -> Json: ...
