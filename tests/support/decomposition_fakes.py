"""Fakes for goal_decomposition unit tests: a chat model scriptable per structured schema
(answers, raw invalid JSON, delays, one-off failures) that measures how many calls of each
schema are in flight at once, and an in-memory `Goals` with the real one's contract (owner
check, `plan` shape, `store_plan` keeping an existing plan under a lock)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import BaseModel, PrivateAttr

from core.errors import NotFound
from core.settings import Settings
from domain.ids import stable_id
from services.llm.gateway import ModelGateway
from state.goal_decomposition import MilestoneDraft, MissionDraft
from state.goals import Goal
from tests.support.fakes import FakeUsageSink, ScriptedChatModel, _Recorder

Answer = BaseModel | str  # a model instance, or raw text (e.g. JSON that fails the schema)


def _schema_name(kwargs: dict[str, Any]) -> str:
    key = kwargs.get("offline_schema")
    return str(key).rsplit(".", 1)[-1] if key else "reply"


class PlanModel(ScriptedChatModel):
    """`ScriptedChatModel` with per-schema scripting, keyed by the schema's class name
    ("GoalAnalysis", "MilestonePlan", "MissionPlan"; "reply" for free text):

    - `script(Schema, *answers)`: the next calls of that schema answer these, in order;
    - `always(Schema, answer)`: then every further call answers this;
    - `delay(Schema, seconds)`: each call sleeps first (while counted as in flight);
    - `fail_once(Schema, error, when=pred, after=s)`: the first call whose brief satisfies
      `pred` raises (after `s` seconds).

    Unscripted calls get the offline answer. `prompts(Schema)` lists each call's messages;
    `peak(Schema)` is the most calls of that schema ever in flight at the same time."""

    _queues: dict[str, list[Answer]] = PrivateAttr(default_factory=dict)
    _always: dict[str, Answer] = PrivateAttr(default_factory=dict)
    _delays: dict[str, float] = PrivateAttr(default_factory=dict)
    _failures: list[tuple[str, BaseException, Callable[[str], bool], float]] = PrivateAttr(
        default_factory=list
    )
    _prompts: dict[str, list[list[BaseMessage]]] = PrivateAttr(default_factory=dict)
    _in_flight: dict[str, int] = PrivateAttr(default_factory=dict)
    _peak: dict[str, int] = PrivateAttr(default_factory=dict)

    def script(self, schema: type[BaseModel], *answers: Answer) -> PlanModel:
        self._queues.setdefault(schema.__name__, []).extend(answers)
        return self

    def always(self, schema: type[BaseModel], answer: Answer) -> PlanModel:
        self._always[schema.__name__] = answer
        return self

    def delay(self, schema: type[BaseModel], seconds: float) -> PlanModel:
        self._delays[schema.__name__] = seconds
        return self

    def fail_once(
        self,
        schema: type[BaseModel],
        error: BaseException,
        *,
        when: Callable[[str], bool] = lambda _: True,
        after: float = 0.0,
    ) -> PlanModel:
        """The first call of `schema` whose brief satisfies `when` sleeps `after` seconds (so
        its siblings can finish first), then raises `error`."""
        self._failures.append((schema.__name__, error, when, after))
        return self

    def prompts(self, schema: type[BaseModel]) -> list[list[BaseMessage]]:
        return self._prompts.get(schema.__name__, [])

    def count(self, schema: type[BaseModel]) -> int:
        return len(self.prompts(schema))

    def peak(self, schema: type[BaseModel]) -> int:
        return self._peak.get(schema.__name__, 0)

    async def _begin(self, messages: list[BaseMessage], kwargs: dict[str, Any]):
        call = await super()._begin(messages, kwargs)
        name = _schema_name(kwargs)
        self._prompts.setdefault(name, []).append(list(messages))
        self._in_flight[name] = self._in_flight.get(name, 0) + 1
        self._peak[name] = max(self._peak.get(name, 0), self._in_flight[name])
        try:
            if seconds := self._delays.get(name):
                await asyncio.sleep(seconds)
            brief = next((m.text for m in messages if isinstance(m, HumanMessage)), "")
            for i, (schema, error, when, after) in enumerate(self._failures):
                if schema == name and when(brief):
                    del self._failures[i]
                    await asyncio.sleep(after)
                    raise error
        finally:
            self._in_flight[name] -= 1
        return call

    def _scripted_text(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        name = _schema_name(kwargs)
        queue = self._queues.get(name)
        answer = queue.pop(0) if queue else self._always.get(name)
        if answer is None:
            return super()._scripted_text(messages, kwargs)
        return answer if isinstance(answer, str) else answer.model_dump_json()


class FakeGoals(_Recorder):
    """In-memory `services.goals.Goals` for the decomposition graph: `get` is owner-checked,
    `plan` has the real shape, `store_plan` locks (one store at a time) and keeps an existing
    plan. Records `get`, `plan` and `store_plan` calls (`fail(..., op="store_plan")` etc.)."""

    primary = "store_plan"

    def __init__(self) -> None:
        super().__init__()
        self.goals: dict[str, Goal] = {}
        self.milestones: dict[str, list[dict[str, Any]]] = {}
        self.missions: dict[str, list[dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    def add(
        self,
        user_id: uuid.UUID,
        *,
        title: str = "Learn to play the guitar",
        description: str = "Play three songs at my sister's wedding in the summer.",
        value_category: str = "craft",
        target_date: date | None = None,
    ) -> Goal:
        goal = Goal(
            id=str(uuid.uuid4()),
            user_id=str(user_id),
            title=title,
            description=description,
            value_category=value_category,  # type: ignore[arg-type]
            target_date=target_date,
        )
        self.goals[goal.id] = goal
        return goal

    async def get(self, user_id: uuid.UUID, goal_id: uuid.UUID) -> Goal:
        await self._run("get", user_id=user_id, goal_id=goal_id)
        goal = self.goals.get(str(goal_id))
        if goal is None or goal.user_id != str(user_id):
            raise NotFound("goal not found")
        return goal

    async def plan(self, goal_id: uuid.UUID) -> dict[str, Any]:
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
        milestones: list[MilestoneDraft],
        missions: list[list[MissionDraft]],
        now: datetime,
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
class DecompositionServices:
    """Duck-types `services.container.Services` for the decomposition graph's nodes."""

    settings: Settings
    model: PlanModel
    usage: FakeUsageSink
    llm: ModelGateway
    goals: FakeGoals


def decomposition_services(*, model: PlanModel | None = None, **settings: Any) -> DecompositionServices:
    """Fakes around a real `Settings` (near-zero LLM backoff unless overridden) and a real
    `ModelGateway` over one `PlanModel` for both tiers."""
    defaults: dict[str, Any] = {"llm_backoff_initial_s": 0.001, "llm_backoff_max_s": 0.01}
    s = Settings(**(defaults | settings))
    m = model or PlanModel()
    sink = FakeUsageSink()
    return DecompositionServices(
        settings=s,
        model=m,
        usage=sink,
        llm=ModelGateway(s, {"cheap": m, "premium": m}, kind="offline", sink=sink),
        goals=FakeGoals(),
    )
