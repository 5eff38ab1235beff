"""The one set of in-memory fakes for graph unit tests: a fake per store, each implementing the
store's protocol in `nodes/ports.py` (so mypy holds every signature to the real one), and
`FakeServices`, which satisfies every workflow's services protocol. The model is a real
`ModelGateway` over `tests/support/models.ScriptedChatModel`. No Postgres, no network.

Every fake records its calls (`calls_of(op)`, `args_of(op)`) and can be told to fail or stall
an operation (`fail(err, op=..., times=..., when=...)`, `stall(seconds, op=...)`). Build a whole
set with `fake_services()`; tests set the data each store starts with."""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, overload
from zoneinfo import ZoneInfo

import httpx2
import openai

from core.errors import NotFound
from core.settings import Settings
from domain.ids import stable_id
from domain.narrative import QuestTrigger
from graphs.registry import WorkflowServices
from nodes.ports import (
    AdaptiveReadsPort,
    GoalsPort,
    InsightsPort,
    MaintenancePort,
    MemoryPort,
    MissionsPort,
    NarrativePort,
    NotificationsPort,
    NudgesPort,
    ProgressPort,
    RunsPort,
    WriteBackPort,
)
from services.llm.gateway import ModelGateway
from services.narrative import beat_notification_key
from services.nudges import Activity, nudge_id
from services.writeback import NewMemory, TurnRecord, WriteResult
from state.goal_decomposition import MilestoneDraft, MissionDraft
from state.goals import Goal, GoalStatus, Mission, MissionStatus, ValueCategory
from state.nudges import Nudge
from state.schemas import TIERS, EmotionScores, MemoryHit, Progress, Tier, TurnAnalysis, Usage
from tests.support.models import Behaviour, ModelCall, ScriptedChatModel

__all__ = [
    "Behaviour",
    "Call",
    "FakeAdaptiveReads",
    "FakeGoals",
    "FakeInsights",
    "FakeMaintenance",
    "FakeMemory",
    "FakeMissions",
    "FakeNarrative",
    "FakeNotifications",
    "FakeNudges",
    "FakeProgress",
    "FakeRuns",
    "FakeServices",
    "FakeUsageSink",
    "FakeWriteBack",
    "ModelCall",
    "ScriptedChatModel",
    "analysis",
    "bad_request_error",
    "connection_error",
    "fake_services",
    "hit",
    "rate_limit_error",
]

Json = dict[str, Any]
DEFAULT_GOAL = "Learn to play the guitar"


# --- errors a real provider raises ---------------------------------------------------------------


def connection_error() -> openai.APIConnectionError:
    """Transient (retried by the gateway)."""
    return openai.APIConnectionError(request=httpx2.Request("POST", "http://llm.test/v1/chat"))


def rate_limit_error() -> openai.RateLimitError:
    """Transient (429, retried by the gateway)."""
    request = httpx2.Request("POST", "http://llm.test/v1/chat")
    response = httpx2.Response(429, request=request, json={"error": {"message": "slow down"}})
    return openai.RateLimitError("rate limited", response=response, body=None)


def bad_request_error() -> openai.BadRequestError:
    """Permanent (400, never retried)."""
    request = httpx2.Request("POST", "http://llm.test/v1/chat")
    response = httpx2.Response(400, request=request, json={"error": {"message": "bad"}})
    return openai.BadRequestError("bad request", response=response, body=None)


def analysis(
    *,
    durable_fact: str | None = None,
    fact_kind: Literal["fact", "preference", "stressor"] | None = None,
    **scores: float,
) -> TurnAnalysis:
    """A `TurnAnalysis` with the given emotion scores, e.g. `analysis(sadness=0.8)`."""
    return TurnAnalysis(emotion=EmotionScores(**scores), durable_fact=durable_fact, fact_kind=fact_kind)


def hit(content: str, tier: Tier = "personal") -> MemoryHit:
    return MemoryHit(id=str(uuid.uuid4()), tier=tier, content=content, score=0.9, similarity=0.8)


# --- recording and scripted failures ------------------------------------------------------------


@dataclass
class Call:
    """One recorded call: arguments, and start/end on `time.perf_counter()` (end is None when
    the call failed or was cancelled)."""

    op: str
    args: dict[str, Any]
    started: float
    ended: float | None = None


@dataclass
class _Rule:
    op: str
    when: Callable[[dict[str, Any]], bool] | None
    error: BaseException | None = None
    delay: float = 0.0
    times: int | None = None  # None: every matching call


class Recorder:
    """Records calls per operation; an operation (its calls matching `when`, if given) can be
    told to fail, on every call or its next `times` ones, or to stall. Like a flaky
    dependency, counted failures come before a standing one."""

    primary: str = "call"

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._rules: list[_Rule] = []

    def fail(
        self,
        error: BaseException,
        *,
        times: int | None = None,
        op: str | None = None,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Raise `error` on every call of `op` (default: the primary one), or its next `times`."""
        self._rules.append(_Rule(op or self.primary, when, error=error, times=times))

    def stall(
        self, seconds: float, *, op: str | None = None, when: Callable[[dict[str, Any]], bool] | None = None
    ) -> None:
        self._rules.append(_Rule(op or self.primary, when, delay=seconds))

    def recover(self, op: str | None = None) -> None:
        """`op` (default: the primary one) works again: its failures and stalls are dropped."""
        self._rules = [r for r in self._rules if r.op != (op or self.primary)]

    def calls_of(self, op: str) -> builtins.list[Call]:
        return [c for c in self.calls if c.op == op]

    def args_of(self, op: str) -> builtins.list[dict[str, Any]]:
        return [c.args for c in self.calls_of(op)]

    async def _run(self, op: str, **args: Any) -> Call:
        call = Call(op=op, args=args, started=time.perf_counter())
        self.calls.append(call)
        rules = [r for r in self._rules if r.op == op and (r.when is None or r.when(args))]
        for r in rules:
            if r.delay:
                await asyncio.sleep(r.delay)
        failing = sorted((r for r in rules if r.error is not None), key=lambda r: r.times is None)
        if failing:
            rule = failing[0]
            if rule.times is not None:
                rule.times -= 1
                if rule.times <= 0:
                    self._rules.remove(rule)
            assert rule.error is not None
            raise rule.error
        call.ended = time.perf_counter()
        return call


# --- memory, progress, the chat write-back -------------------------------------------------------


class FakeMemory(Recorder, MemoryPort):
    """`retrieve` answers `hits` (per tier, missing tiers empty); `add` records and returns
    (id, False), keeping `stored` keyed by id so idempotent rewrites are visible; `delete`
    removes from `stored` (NotFound when absent)."""

    primary = "retrieve"

    def __init__(self, hits: dict[str, builtins.list[MemoryHit]] | None = None) -> None:
        super().__init__()
        self.hits: dict[str, builtins.list[MemoryHit]] = {t: [] for t in TIERS} | (hits or {})
        self.added: builtins.list[dict[str, Any]] = []
        self.stored: dict[str, dict[str, Any]] = {}

    async def retrieve(
        self,
        user_id: uuid.UUID,
        query: str,
        *,
        now: dt.datetime,
        quotas: dict[str, int] | None = None,
        touch: bool = True,
    ) -> dict[str, builtins.list[MemoryHit]]:
        await self._run("retrieve", user_id=user_id, query=query, now=now, quotas=quotas, touch=touch)
        return {t: list(hs) for t, hs in self.hits.items()}

    async def add(
        self,
        user_id: uuid.UUID,
        tier: Tier,
        content: str,
        metadata: dict[str, Any] | None = None,
        *,
        now: dt.datetime,
        memory_id: uuid.UUID | None = None,
    ) -> tuple[str, bool]:
        await self._run("add", user_id=user_id, tier=tier, memory_id=memory_id)
        mid = str(memory_id or uuid.uuid4())
        entry = {
            "id": mid,
            "user_id": user_id,
            "tier": tier,
            "content": content,
            "metadata": dict(metadata or {}),
            "now": now,
            "memory_id": memory_id,
        }
        self.added.append(entry)
        self.stored[mid] = entry
        return mid, False

    async def delete(self, user_id: uuid.UUID, memory_id: uuid.UUID) -> None:
        await self._run("delete", user_id=user_id, memory_id=memory_id)
        if self.stored.pop(str(memory_id), None) is None:
            raise NotFound("memory not found")


class FakeProgress(Recorder, ProgressPort):
    primary = "recent"

    def __init__(self, progress: Progress | None = None) -> None:
        super().__init__()
        self.progress = progress or Progress()

    async def recent(self, user_id: uuid.UUID, tz: str, now: dt.datetime) -> Progress:
        await self._run("recent", user_id=user_id, tz=tz, now=now)
        return self.progress


class FakeWriteBack(Recorder, WriteBackPort):
    """The chat write-back: records each `TurnRecord`; `memories` is keyed by memory id, so
    idempotent rewrites are visible."""

    primary = "write"

    def __init__(self) -> None:
        super().__init__()
        self.turns: builtins.list[TurnRecord] = []
        self.memories: dict[str, NewMemory] = {}

    async def write(self, turn: TurnRecord) -> WriteResult:
        await self._run("write", turn_key=turn.turn_key)
        self.turns.append(turn)
        for m in turn.memories:
            self.memories[str(m.id)] = m
        return WriteResult(embedded=True)


# --- goals, missions, notifications, runs --------------------------------------------------------


class FakeGoals(Recorder, GoalsPort):
    """Goals with the real store's contract: `get` is owner-checked (NotFound for another
    user's), `plan` has the real shape, `store_plan` locks (one at a time) and keeps an
    existing plan."""

    primary = "get"

    def __init__(self, goals: Iterable[Goal] = ()) -> None:
        super().__init__()
        self.goals: dict[str, Goal] = {g.id: g for g in goals}
        self.milestones: dict[str, builtins.list[dict[str, Any]]] = {}
        self.missions: dict[str, builtins.list[dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    def add(
        self,
        user_id: uuid.UUID,
        title: str = DEFAULT_GOAL,
        target_date: dt.date | None = None,
        *,
        description: str = "",
        value_category: ValueCategory = "craft",
        status: GoalStatus = "active",
        created_at: dt.datetime | None = None,
    ) -> Goal:
        goal = Goal(
            id=str(uuid.uuid4()),
            user_id=str(user_id),
            title=title,
            description=description,
            value_category=value_category,
            target_date=target_date,
            status=status,
            created_at=created_at,
        )
        self.goals[goal.id] = goal
        return goal

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
    ) -> Goal:
        await self._run("create", user_id=user_id, goal_id=goal_id)
        goal = self.goals.get(str(goal_id)) or Goal.model_validate(
            {
                "id": str(goal_id),
                "user_id": str(user_id),
                "title": title,
                "description": description,
                "value_category": value_category,
                "target_date": target_date,
                "emotional_driver": emotional_driver,
            }
        )
        self.goals[goal.id] = goal
        return goal

    async def get(self, user_id: uuid.UUID, goal_id: uuid.UUID) -> Goal:
        await self._run("get", user_id=user_id, goal_id=goal_id)
        goal = self.goals.get(str(goal_id))
        if goal is None or goal.user_id != str(user_id):
            raise NotFound("goal not found")
        return goal

    async def list(self, user_id: uuid.UUID, status: str | None = None) -> builtins.list[Goal]:
        await self._run("list", status=status)
        return [
            g
            for g in self.goals.values()
            if g.user_id == str(user_id) and (status is None or g.status == status)
        ]

    async def plan(self, goal_id: uuid.UUID) -> Json:
        await self._run("plan", goal_id=goal_id)
        gid = str(goal_id)
        missions = self.missions.get(gid, [])
        return {
            "goal_id": gid,
            "milestones": [
                {**ms, "missions": [m for m in missions if m["milestone_id"] == ms["id"]]}
                for ms in self.milestones.get(gid, [])
            ],
        }

    async def store_plan(
        self,
        goal: Goal,
        milestones: builtins.list[MilestoneDraft],
        missions: builtins.list[builtins.list[MissionDraft]],
        now: dt.datetime,
    ) -> tuple[int, int, bool]:
        async with self._lock:
            await self._run("store_plan", goal_id=goal.id, milestones=milestones, missions=missions, now=now)
            gid = goal.id
            if self.milestones.get(gid):
                return len(self.milestones[gid]), len(self.missions[gid]), False
            self.milestones[gid] = [
                {
                    "id": str(stable_id(gid, "milestone", i)),
                    "sequence": i,
                    "title": m.title,
                    "description": m.description,
                }
                for i, m in enumerate(milestones, start=1)
            ]
            self.missions[gid] = [
                {
                    "id": str(stable_id(gid, "mission", i, j)),
                    "milestone_id": str(stable_id(gid, "milestone", i)),
                    "status": "pending",
                    **d.model_dump(mode="json"),
                }
                for i, batch in enumerate(missions, start=1)
                for j, d in enumerate(batch, start=1)
            ]
            return len(milestones), len(self.missions[gid]), True


@dataclass
class PrepRecord:
    user_id: uuid.UUID
    mission_id: uuid.UUID
    first_step: str
    priority: float


class FakeMissions(Recorder, MissionsPort):
    """Missions with the real store's contract: `get` and `set_prep` are owner-scoped (NotFound
    for another user's or an unknown id), `create_once` keeps the first insert. Completions
    and focused sessions are (at, minutes) events: `completed_since` counts completions,
    `minutes_since` adds both up. `now` stamps the missions `create_once` creates."""

    primary = "get"

    def __init__(self, now: dt.datetime | None = None) -> None:
        super().__init__()
        self.now = now
        self.rows: dict[uuid.UUID, Mission] = {}
        self.owners: dict[uuid.UUID, uuid.UUID] = {}
        self.events: builtins.list[tuple[dt.datetime, int]] = []  # completions
        self.sessions: builtins.list[tuple[dt.datetime, int]] = []  # focused time without a completion
        self.preps: builtins.list[PrepRecord] = []

    def add(
        self,
        owner: uuid.UUID,
        title: str,
        *,
        minutes: int = 20,
        energy: Literal["low", "medium", "high"] = "medium",
        status: MissionStatus = "pending",
        goal_id: str | None = None,
        created_at: dt.datetime | None = None,
    ) -> Mission:
        mission = Mission(
            id=str(uuid.uuid4()),
            goal_id=goal_id,
            title=title,
            description=f"About {title}",
            estimated_minutes=minutes,
            energy_level=energy,
            status=status,
            created_at=created_at or dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC),
        )
        self.rows[uuid.UUID(mission.id)] = mission
        self.owners[uuid.UUID(mission.id)] = owner
        return mission

    def mission(self, mission_id: str) -> Mission:
        return self.rows[uuid.UUID(mission_id)]

    def fail_get(self, mission_id: str, error: BaseException, *, times: int) -> None:
        """The next `times` reads of this mission raise `error`."""
        mid = uuid.UUID(mission_id)
        self.fail(error, op="get", times=times, when=lambda a: a["mission_id"] == mid)

    @property
    def gets(self) -> builtins.list[uuid.UUID]:
        return [a["mission_id"] for a in self.args_of("get")]

    def _mine(self, user_id: uuid.UUID, mission_id: uuid.UUID) -> bool:
        return mission_id in self.rows and self.owners.get(mission_id, user_id) == user_id

    async def list(
        self, user_id: uuid.UUID, status: str | None = None, limit: int = 100
    ) -> builtins.list[Mission]:
        await self._run("list", status=status, limit=limit)
        mine = [m for mid, m in self.rows.items() if self._mine(user_id, mid)]
        return [m for m in mine if status is None or m.status == status][:limit]

    async def get(self, user_id: uuid.UUID, mission_id: uuid.UUID) -> Mission:
        await asyncio.sleep(0)
        await self._run("get", mission_id=mission_id)
        if not self._mine(user_id, mission_id):
            raise NotFound("mission not found")
        return self.rows[mission_id]

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
    ) -> Mission:
        fields: dict[str, Any] = {
            "title": title,
            "description": description,
            "estimated_minutes": estimated_minutes,
            "energy_level": energy_level,
            "kind": kind,
            "value_category": value_category,
        }
        await self._run("create_once", mission_id=mission_id, goal_id=goal_id, priority=priority, **fields)
        if mission_id not in self.rows:
            self.rows[mission_id] = Mission.model_validate(
                {
                    "id": str(mission_id),
                    "goal_id": str(goal_id) if goal_id else None,
                    "priority_score": priority,
                    "created_at": self.now,
                    **fields,
                }
            )
            self.owners[mission_id] = user_id
        return self.rows[mission_id]

    async def set_prep(
        self, user_id: uuid.UUID, mission_id: uuid.UUID, *, first_step: str, priority: float
    ) -> None:
        await asyncio.sleep(0)
        await self._run("set_prep", mission_id=mission_id)
        self.preps.append(PrepRecord(user_id, mission_id, first_step, priority))
        if self._mine(user_id, mission_id):  # owner-scoped, like the UPDATE's WHERE
            self.rows[mission_id] = self.rows[mission_id].model_copy(
                update={"first_step": first_step, "priority_score": priority}
            )

    async def completed_since(self, user_id: uuid.UUID, since: dt.datetime) -> int:
        await self._run("completed_since", since=since)
        return sum(1 for at, _ in self.events if at > since)

    async def minutes_since(self, user_id: uuid.UUID, since: dt.datetime) -> int:
        await self._run("minutes_since", since=since)
        return sum(m for at, m in [*self.events, *self.sessions] if at > since)


class FakeNotifications(Recorder, NotificationsPort):
    """Rows keyed by dedupe key (the first write wins, like ON CONFLICT DO NOTHING)."""

    primary = "record"

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, Any]] = {}

    async def record(
        self,
        user_id: uuid.UUID,
        *,
        kind: str,
        title: str,
        body: str = "",
        data: dict[str, Any] | None = None,
        dedupe_key: str | None = None,
    ) -> None:
        await self._run("record", user_id=user_id, kind=kind)
        self.rows.setdefault(
            dedupe_key or str(uuid.uuid4()),
            {"user_id": user_id, "kind": kind, "title": title, "body": body, "data": data or {}},
        )


class FakeRuns(Recorder, RunsPort):
    """Background runs started by nodes, by run id (a second start of one id is a no-op)."""

    primary = "start_background"

    def __init__(self) -> None:
        super().__init__()
        self.started: dict[uuid.UUID, dict[str, Any]] = {}

    async def start_background(
        self,
        workflow: str,
        *,
        run_id: uuid.UUID,
        thread_id: str,
        user_id: uuid.UUID | None,
        input: Any,
        timezone: str = "UTC",
    ) -> object:
        await self._run("start_background", workflow=workflow, run_id=run_id)
        return self.started.setdefault(
            run_id, {"workflow": workflow, "thread_id": thread_id, "user_id": user_id, "input": input}
        )


# --- adaptive_mission's reads --------------------------------------------------------------------


class FakeAdaptiveReads(Recorder, AdaptiveReadsPort):
    """`messages`: the user's chat messages (oldest first); `recorded`: the latest emotion
    scores in their chat memories; `completed`: the missions they completed recently."""

    primary = "latest_emotion_scores"

    def __init__(self) -> None:
        super().__init__()
        self.messages: builtins.list[str] = []
        self.recorded: dict[str, float] | None = None
        self.completed: builtins.list[Mission] = []

    async def recent_user_messages(
        self, user_id: uuid.UUID, *, since: dt.datetime, until: dt.datetime, limit: int = 3
    ) -> builtins.list[str]:
        await self._run("recent_user_messages", since=since, until=until, limit=limit)
        return self.messages[-limit:]

    async def latest_emotion_scores(
        self, user_id: uuid.UUID, *, since: dt.datetime, until: dt.datetime
    ) -> dict[str, float] | None:
        await self._run("latest_emotion_scores", since=since, until=until)
        return self.recorded

    async def completed_missions_since(
        self, user_id: uuid.UUID, since: dt.datetime, limit: int = 50
    ) -> builtins.list[Mission]:
        await self._run("completed_missions_since", since=since)
        return list(self.completed)


# --- weekly_insights' store ------------------------------------------------------------------------


class FakeInsights(Recorder, InsightsPort):
    """`InsightStore` with the same keep-unless-degraded write rule. `stats` and `memories` are
    what the week's reads answer; `race_row`, when set, is stored by "another run" just before
    this one's write."""

    primary = "get"

    def __init__(self, now: dt.datetime | None = None) -> None:
        super().__init__()
        self.now = now
        self.stats: Json = {}
        self.memories: builtins.list[Json] = []
        self.rows: dict[tuple[uuid.UUID, str], Json] = {}
        self.race_row: Json | None = None

    async def task_memories(
        self, user_id: uuid.UUID, *, since: dt.datetime, until: dt.datetime, now: dt.datetime
    ) -> builtins.list[Json]:
        await self._run("task_memories", user_id=user_id, since=since, until=until, now=now)
        return list(self.memories)

    async def week_stats(
        self, user_id: uuid.UUID, *, tz: str, since: dt.datetime, until: dt.datetime
    ) -> Json:
        await self._run("week_stats", user_id=user_id, tz=tz, since=since, until=until)
        return dict(self.stats)

    async def get(self, user_id: uuid.UUID, week: str) -> Json | None:
        await self._run("get", user_id=user_id, week=week)
        row = self.rows.get((user_id, week))
        return dict(row) if row else None

    async def store(
        self,
        user_id: uuid.UUID,
        *,
        insight_id: uuid.UUID,
        week: str,
        text: str,
        dci: float,
        stats: Json,
    ) -> tuple[Json, bool]:
        await self._run("store", user_id=user_id, insight_id=insight_id, week=week, text=text, dci=dci)
        if self.race_row is not None:
            self.rows[(user_id, week)] = {**self.race_row, "id": str(insight_id), "week": week}
            self.race_row = None
        old = self.rows.get((user_id, week))
        if old is not None and not old["stats"].get("degraded"):
            return dict(old), False
        row = {
            "id": str(insight_id),
            "week": week,
            "text": text,
            "dci": dci,
            "stats": stats,
            "highlight_reel": None,
            "created_at": self.now,
        }
        self.rows[(user_id, week)] = row
        return dict(row), True

    async def set_highlight_reel(self, user_id: uuid.UUID, week: str, reel: Json) -> Json | None:
        await self._run("set_highlight_reel", user_id=user_id, week=week)
        row = self.rows.get((user_id, week))
        if row is None:
            return None
        row["highlight_reel"] = reel
        return dict(row)


# --- narrative_beat's store ------------------------------------------------------------------------


class FakeNarrative(Recorder, NarrativePort):
    """`NarrativeStore` with the real one's contract: beats unique per (user, goal, trigger
    key), title and teaser read back from the beat's notification, progress counts from
    `counts` plus what its own rows say (beat keys, unlocks, the latest beat). `activity` is
    the number of completions/skips since the latest beat; `race_text`, when set, is the text
    a concurrent run stores first. `remember` adds a memory, an hour older than the last."""

    primary = "goal_progress"

    def __init__(self, notifications: FakeNotifications, now: dt.datetime | None = None) -> None:
        super().__init__()
        self.notifications = notifications
        self.now = now or dt.datetime.now(dt.UTC)
        self.counts: Json = {}
        self.activity = 0
        self.memories: builtins.list[Json] = []
        self.beats: dict[tuple[uuid.UUID, uuid.UUID, str], Json] = {}
        self.unlocked: dict[uuid.UUID, dict[str, QuestTrigger]] = {}
        self.race_text: str | None = None

    def remember(self, user_id: uuid.UUID, tier: str, content: str, **metadata: Any) -> None:
        at = self.now - dt.timedelta(hours=len(self.memories) + 1)
        self.memories.append(
            {
                "id": str(uuid.uuid4()),
                "user_id": user_id,
                "tier": tier,
                "content": content,
                "metadata": metadata,
                "created_at": at,
            }
        )

    def _view(self, beat: Json) -> Json:
        note = self.notifications.rows.get(beat_notification_key(beat["id"]))
        return {
            **beat,
            "title": note["title"] if note else beat["beat_type"].replace("_", " ").title(),
            "teaser": note["body"] if note else None,
        }

    async def project_memories(
        self, user_id: uuid.UUID, goal_id: uuid.UUID, *, now: dt.datetime, limit: int = 10
    ) -> builtins.list[Json]:
        await self._run("project_memories", user_id=user_id, goal_id=goal_id, limit=limit)
        rows = [
            m
            for m in self.memories
            if m["user_id"] == user_id
            and m["tier"] == "project"
            and m["metadata"].get("goal_id") == str(goal_id)
        ]
        return sorted(rows, key=lambda m: m["created_at"], reverse=True)[:limit]

    async def tagged_memories(
        self, user_id: uuid.UUID, tag: str, *, now: dt.datetime, limit: int = 5
    ) -> builtins.list[Json]:
        await self._run("tagged_memories", user_id=user_id, tag=tag, limit=limit)
        rows = [
            m
            for m in self.memories
            if m["user_id"] == user_id and m["tier"] == "personal" and tag in m["metadata"].get("tags", [])
        ]
        return sorted(rows, key=lambda m: m["created_at"], reverse=True)[:limit]

    async def goal_progress(
        self, user_id: uuid.UUID, goal_id: uuid.UUID, *, now: dt.datetime, skip_window_days: int = 7
    ) -> Json:
        await self._run("goal_progress", user_id=user_id, goal_id=goal_id, window=skip_window_days)
        beats = [b for (u, g, _), b in self.beats.items() if u == user_id and g == goal_id]
        last = max(beats, key=lambda b: b["created_at"]) if beats else None
        return {
            **self.counts,
            "unlocked": sorted(self.unlocked.get(user_id, {})),
            "beat_keys": sorted(b["trigger_key"] for b in beats),
            "last_beat_id": last["id"] if last else None,
            "activity_since_last_beat": self.activity,
        }

    async def beat_for_trigger(self, user_id: uuid.UUID, goal_id: uuid.UUID, trigger_key: str) -> Json | None:
        await self._run("beat_for_trigger", key=trigger_key)
        beat = self.beats.get((user_id, goal_id, trigger_key))
        return self._view(beat) if beat else None

    async def get_beat(self, user_id: uuid.UUID, beat_id: uuid.UUID) -> Json | None:
        await self._run("get_beat", beat_id=beat_id)
        beat = next(
            (b for (u, _, _), b in self.beats.items() if u == user_id and b["id"] == str(beat_id)), None
        )
        return self._view(beat) if beat else None

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
    ) -> tuple[Json, bool]:
        await self._run("insert_beat", key=trigger_key)
        row = {
            "id": str(beat_id),
            "goal_id": str(goal_id),
            "beat_type": beat_type,
            "trigger_key": trigger_key,
            "unlocks": list(unlocks),
            "created_at": now,
        }
        key = (user_id, goal_id, trigger_key)
        if self.race_text is not None and key not in self.beats:
            self.beats[key] = {**row, "text": self.race_text}
        inserted = key not in self.beats
        self.beats.setdefault(key, {**row, "text": text})
        return self._view(self.beats[key]), inserted

    async def record_unlocks(
        self, user_id: uuid.UUID, quests: Sequence[QuestTrigger], *, now: dt.datetime
    ) -> builtins.list[str]:
        await self._run("record_unlocks", keys=[q.key for q in quests])
        mine = self.unlocked.setdefault(user_id, {})
        new = [q.key for q in quests if q.key not in mine]
        for q in quests:
            mine.setdefault(q.key, q)
        return new


# --- personalized_nudge's store --------------------------------------------------------------------


class FakeNudges(Recorder, NudgesPort):
    """`NudgeStore`: rows keyed by idempotency key, caps counted from them (plus
    `extra_in_streak` / `extra_today` pretending older rows exist). `hide_existing` makes
    `by_key` miss a stored row, as a run racing another would. Set `activity` (the user's last
    activity and timezone) before a run: `last_active(...)`."""

    primary = "preferences"

    def __init__(self) -> None:
        super().__init__()
        self.activity = Activity(dt.datetime(2000, 1, 1, tzinfo=dt.UTC), "UTC", False)
        self.raw_preferences: Json = {}
        self.rows: dict[str, Nudge] = {}
        self.extra_in_streak = 0
        self.extra_today = 0
        self.hide_existing = False
        self.creates: builtins.list[Json] = []

    def last_active(self, at: dt.datetime, timezone: str, *, signed_up_only: bool = False) -> None:
        self.activity = Activity(at, timezone, signed_up_only)

    @property
    def tallies(self) -> builtins.list[Json]:
        return self.args_of("tally")

    async def preferences(self, user_id: uuid.UUID) -> Json:
        await self._run("preferences")
        return dict(self.raw_preferences)

    async def last_activity(self, user_id: uuid.UUID, now: dt.datetime) -> Activity:
        await self._run("last_activity")
        return self.activity

    async def tally(
        self, user_id: uuid.UUID, *, streak_start: dt.date, day: dt.date, tz: str
    ) -> tuple[int, int]:
        await self._run("tally", streak_start=streak_start, day=day, tz=tz)
        rows = [r for r in self.rows.values() if r.status in ("scheduled", "sent")]
        in_streak = sum(r.streak_start == streak_start for r in rows)
        today = sum(r.send_at.astimezone(ZoneInfo(tz)).date() == day for r in rows)
        return in_streak + self.extra_in_streak, today + self.extra_today

    async def by_key(self, user_id: uuid.UUID, key: str) -> Nudge | None:
        await self._run("by_key", key=key)
        return None if self.hide_existing else self.rows.get(key)

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
    ) -> tuple[Nudge, bool]:
        fields: Json = {
            "channel": channel,
            "message": message,
            "send_at": send_at,
            "sequence_index": sequence_index,
            "streak_start": streak_start,
        }
        await self._run("create", key=key)
        self.creates.append({"key": key, "subject": subject, **fields})
        if key in self.rows:
            return self.rows[key], False
        row = Nudge.model_validate(
            {"id": str(nudge_id(key)), "user_id": str(user_id), "status": "scheduled", **fields}
        )
        self.rows[key] = row
        return row.model_copy(update={"subject": subject}), True


# --- the background jobs' store ------------------------------------------------------------------


class FakeMaintenance(Recorder, MaintenancePort):
    """What weekly_quests and nightly_maintenance read and write, in memory."""

    primary = "users"

    def __init__(self) -> None:
        super().__init__()
        self.user_rows: builtins.list[Json] = []
        self.patterns: Json = {}
        self.stats: Json = {"missions_completed": 0, "goals_completed": 0, "unlocked": None}
        self.unlocked: set[tuple[uuid.UUID, str]] = set()
        self.dci: dict[tuple[uuid.UUID, dt.date], Progress] = {}
        self.pruned = 0
        self.consolidated = 0

    async def users(self) -> builtins.list[Json]:
        await self._run("users")
        return list(self.user_rows)

    async def prune_expired_task_memories(self, now: dt.datetime) -> int:
        await self._run("prune_expired_task_memories", now=now)
        return self.pruned

    async def consolidate_week(self, week: str, start: dt.datetime, end: dt.datetime) -> int:
        await self._run("consolidate_week", week=week, start=start, end=end)
        return self.consolidated

    async def store_dci(self, user_id: uuid.UUID, day: dt.date, progress: Progress) -> None:
        await self._run("store_dci", user_id=user_id, day=day)
        self.dci[(user_id, day)] = progress

    async def quest_stats(self, user_id: uuid.UUID) -> Json:
        await self._run("quest_stats", user_id=user_id)
        return dict(self.stats)

    async def unlock(self, user_id: uuid.UUID, key: str, title: str, description: str) -> bool:
        await self._run("unlock", user_id=user_id, key=key)
        new = (user_id, key) not in self.unlocked
        self.unlocked.add((user_id, key))
        return new

    async def completion_patterns(self, user_id: uuid.UUID, tz: str, now: dt.datetime) -> Json:
        await self._run("completion_patterns", user_id=user_id)
        return dict(self.patterns)


# --- the whole set -------------------------------------------------------------------------------


@dataclass
class UsageRecord:
    user_id: str | None
    site: str
    model: str
    usage: Usage


class FakeUsageSink:
    """A `UsageSink` that keeps what the gateway accounts, one record per model call."""

    def __init__(self) -> None:
        self.records: builtins.list[UsageRecord] = []

    async def record(self, *, user_id: str | None, site: str, model: str, usage: Usage) -> None:
        self.records.append(UsageRecord(user_id, site, model, usage))


M = TypeVar("M", bound=ScriptedChatModel)


@dataclass
class FakeServices(Generic[M]):
    """Every store a node may use, in memory; satisfies each workflow's services protocol.
    `model` answers the cheap tier and `premium` the premium one (the same model unless given)."""

    settings: Settings
    model: M
    premium: ScriptedChatModel
    usage: FakeUsageSink
    llm: ModelGateway
    memory: FakeMemory = field(default_factory=FakeMemory)
    progress: FakeProgress = field(default_factory=FakeProgress)
    writeback: FakeWriteBack = field(default_factory=FakeWriteBack)
    goals: FakeGoals = field(default_factory=FakeGoals)
    missions: FakeMissions = field(default_factory=FakeMissions)
    notifications: FakeNotifications = field(default_factory=FakeNotifications)
    runs: FakeRuns = field(default_factory=FakeRuns)
    adaptive: FakeAdaptiveReads = field(default_factory=FakeAdaptiveReads)
    insights: FakeInsights = field(default_factory=FakeInsights)
    narrative: FakeNarrative = field(init=False)
    nudges: FakeNudges = field(default_factory=FakeNudges)
    maintenance: FakeMaintenance = field(default_factory=FakeMaintenance)
    user: uuid.UUID = field(default_factory=uuid.uuid4)  # a user to run as

    def __post_init__(self) -> None:
        self.narrative = FakeNarrative(self.notifications)

    @property
    def model_calls(self) -> builtins.list[ModelCall]:
        """Every model call, both tiers."""
        return self.model.calls if self.premium is self.model else [*self.premium.calls, *self.model.calls]


@overload
def fake_services(
    *,
    model: None = None,
    premium: ScriptedChatModel | None = None,
    hits: dict[str, builtins.list[MemoryHit]] | None = None,
    progress: Progress | None = None,
    **settings: Any,
) -> FakeServices[ScriptedChatModel]: ...
@overload
def fake_services(
    *,
    model: M,
    premium: ScriptedChatModel | None = None,
    hits: dict[str, builtins.list[MemoryHit]] | None = None,
    progress: Progress | None = None,
    **settings: Any,
) -> FakeServices[M]: ...
def fake_services(
    *,
    model: ScriptedChatModel | None = None,
    premium: ScriptedChatModel | None = None,
    hits: dict[str, builtins.list[MemoryHit]] | None = None,
    progress: Progress | None = None,
    **settings: Any,
) -> FakeServices[Any]:
    """Fakes around a real `Settings` (branch timeout 0.3 s, near-zero LLM backoff, unless
    overridden by keyword) and a real `ModelGateway` over the scripted model(s)."""
    defaults: dict[str, Any] = {
        "branch_timeout_s": 0.3,
        "llm_backoff_initial_s": 0.001,
        "llm_backoff_max_s": 0.01,
    }
    s = Settings(**(defaults | settings))
    cheap = model or ScriptedChatModel()
    rich = premium or cheap
    sink = FakeUsageSink()
    return FakeServices(
        settings=s,
        model=cheap,
        premium=rich,
        usage=sink,
        llm=ModelGateway(s, {"cheap": cheap, "premium": rich}, kind="offline", sink=sink),
        memory=FakeMemory(hits),
        progress=FakeProgress(progress),
    )


def _fits_every_workflow(s: FakeServices[ScriptedChatModel]) -> WorkflowServices:
    """Never called: mypy checks here that the fakes meet every workflow's protocol."""
    return s
