"""In-memory fakes for the process_missions graph: a prep model that measures how many of its
calls are in flight at once and can be scripted per mission title, and owner-scoped missions
and goals. No Postgres, no network. Build a whole set with `processing_services()`."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from core.errors import NotFound
from core.settings import Settings
from prompts.process_missions import find_mission
from services.llm.gateway import ModelGateway
from services.llm.offline import OfflineChatModel
from state.goals import Goal, Mission
from tests.support.fakes import FakeUsageSink

# A structured answer that parses as JSON but fails `MissionPrep` (empty strings).
INVALID_PREP = '{"first_step": "", "encouragement": ""}'


@dataclass
class Script:
    """What the model does for one mission title: raise `error`, or answer `text`, on every
    call (`times=None`) or on its next `times` calls only."""

    error: BaseException | None = None
    text: str | None = None
    times: int | None = None


class PrepModel(OfflineChatModel):
    """The offline model (so answers are the real offline `MissionPrep`), except that every call
    sleeps `delay` seconds while counted as in flight, and can be scripted per mission title
    (read from the prompt's mission block). `max_in_flight` is the most calls seen at once."""

    delay: float = 0.05
    _in_flight: int = PrivateAttr(default=0)
    _max_in_flight: int = PrivateAttr(default=0)
    _titles: list[str] = PrivateAttr(default_factory=list)
    _prompts: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _scripts: dict[str, Script] = PrivateAttr(default_factory=dict)

    def fail(self, title: str, error: BaseException, *, times: int | None = None) -> PrepModel:
        self._scripts[title] = Script(error=error, times=times)
        return self

    def answer(self, title: str, text: str, *, times: int | None = None) -> PrepModel:
        self._scripts[title] = Script(text=text, times=times)
        return self

    def fail_all(self, error: BaseException) -> PrepModel:
        self._scripts["*"] = Script(error=error)
        return self

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    @property
    def titles(self) -> list[str]:
        """The mission title of each call, in call order."""
        return self._titles

    @property
    def prompts(self) -> list[list[BaseMessage]]:
        return self._prompts

    def calls_for(self, title: str) -> int:
        return self._titles.count(title)

    def _scripted(self, title: str) -> Script | None:
        script = self._scripts.get(title) or self._scripts.get("*")
        if script is None:
            return None
        if script.times is not None:
            if script.times <= 0:
                return None
            script.times -= 1
        return script

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        title = str((find_mission(messages) or {}).get("title", ""))
        self._titles.append(title)
        self._prompts.append(list(messages))
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self._in_flight -= 1
        script = self._scripted(title)
        if script is not None and script.error is not None:
            raise script.error
        text = script.text if script is not None and script.text is not None else None
        return self._result(messages, text or self._answer(messages, stop, kwargs))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("PrepModel is async only")

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError("PrepModel answers structured calls only")

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        raise NotImplementedError("PrepModel answers structured calls only")
        yield  # pragma: no cover


@dataclass
class PrepRecord:
    user_id: uuid.UUID
    mission_id: uuid.UUID
    first_step: str
    priority: float


class FakeMissions:
    """Owner-scoped missions. `get` raises `NotFound` for another owner's or an unknown id (as
    the real service does); `fail_get(mid, err, times)` makes its next calls for `mid` raise."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, tuple[uuid.UUID, Mission]] = {}
        self.preps: list[PrepRecord] = []
        self.gets: list[uuid.UUID] = []
        self._get_errors: dict[uuid.UUID, list[BaseException]] = {}

    def add(
        self,
        owner: uuid.UUID,
        title: str,
        *,
        minutes: int = 20,
        energy: Literal["low", "medium", "high"] = "medium",
        status: Literal["pending", "in_progress", "completed", "deferred", "archived"] = "pending",
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
        self.rows[uuid.UUID(mission.id)] = (owner, mission)
        return mission

    def fail_get(self, mission_id: str, error: BaseException, *, times: int) -> None:
        self._get_errors.setdefault(uuid.UUID(mission_id), []).extend([error] * times)

    def mission(self, mission_id: str) -> Mission:
        return self.rows[uuid.UUID(mission_id)][1]

    async def get(self, user_id: uuid.UUID, mission_id: uuid.UUID) -> Mission:
        self.gets.append(mission_id)
        await asyncio.sleep(0)
        if errors := self._get_errors.get(mission_id):
            raise errors.pop(0)
        row = self.rows.get(mission_id)
        if row is None or row[0] != user_id:
            raise NotFound("mission not found")
        return row[1]

    async def set_prep(
        self, user_id: uuid.UUID, mission_id: uuid.UUID, *, first_step: str, priority: float
    ) -> None:
        await asyncio.sleep(0)
        self.preps.append(PrepRecord(user_id, mission_id, first_step, priority))
        row = self.rows.get(mission_id)
        if row is not None and row[0] == user_id:  # owner-scoped, like the UPDATE's WHERE
            owner, mission = row
            self.rows[mission_id] = (
                owner,
                mission.model_copy(update={"first_step": first_step, "priority_score": priority}),
            )


class FakeGoals:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Goal] = {}

    def add(self, owner: uuid.UUID, title: str, target_date: dt.date | None) -> Goal:
        goal = Goal(
            id=str(uuid.uuid4()),
            user_id=str(owner),
            title=title,
            value_category="craft",
            target_date=target_date,
        )
        self.rows[uuid.UUID(goal.id)] = goal
        return goal

    async def get(self, user_id: uuid.UUID, goal_id: uuid.UUID) -> Goal:
        goal = self.rows.get(goal_id)
        if goal is None or goal.user_id != str(user_id):
            raise NotFound("goal not found")
        return goal


@dataclass
class ProcessingServices:
    """Duck-types `services.container.Services` for process_missions' nodes."""

    settings: Settings
    model: PrepModel
    usage: FakeUsageSink
    llm: ModelGateway
    missions: FakeMissions = field(default_factory=FakeMissions)
    goals: FakeGoals = field(default_factory=FakeGoals)


def processing_services(*, model: PrepModel | None = None, **settings: Any) -> ProcessingServices:
    """Fakes around a real `Settings` (near-zero LLM backoff unless overridden) and a real
    `ModelGateway` over one `PrepModel` for both tiers."""
    defaults: dict[str, Any] = {"llm_backoff_initial_s": 0.001, "llm_backoff_max_s": 0.01}
    s = Settings(**(defaults | settings))
    m = model or PrepModel()
    sink = FakeUsageSink()
    return ProcessingServices(
        settings=s,
        model=m,
        usage=sink,
        llm=ModelGateway(s, {"cheap": m, "premium": m}, kind="offline", sink=sink),
    )
