"""In-memory fakes for graph unit tests: a scriptable chat model and the services the chat graph
uses (memory, progress, the write-back), each able to be told to fail or to stall. No Postgres, no
network. Build a whole set with `fake_services()`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx
import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import BaseModel, PrivateAttr

from core.settings import Settings
from prompts.chat import parse_context_block
from services.llm.gateway import ModelGateway
from services.llm.offline import OfflineChatModel
from services.writeback import NewMemory, TurnRecord, WriteResult
from state.schemas import TIERS, EmotionScores, MemoryHit, Progress, TurnAnalysis, Usage

CallKind = Literal["structured", "reply"]


# --- errors a real provider raises ---------------------------------------------------------------


def connection_error() -> openai.APIConnectionError:
    """Transient (retried by the gateway)."""
    return openai.APIConnectionError(request=httpx.Request("POST", "http://llm.test/v1/chat"))


def rate_limit_error() -> openai.RateLimitError:
    """Transient (429, retried by the gateway)."""
    request = httpx.Request("POST", "http://llm.test/v1/chat")
    response = httpx.Response(429, request=request, json={"error": {"message": "slow down"}})
    return openai.RateLimitError("rate limited", response=response, body=None)


def bad_request_error() -> openai.BadRequestError:
    """Permanent (400, never retried)."""
    request = httpx.Request("POST", "http://llm.test/v1/chat")
    response = httpx.Response(400, request=request, json={"error": {"message": "bad"}})
    return openai.BadRequestError("bad request", response=response, body=None)


# --- scriptable behaviour -----------------------------------------------------------------------


@dataclass
class Behaviour:
    """What a fake does on its next calls: queued errors are raised one per call (then it
    succeeds); `error` is raised on every call; `delay` is slept before answering (or failing)."""

    errors: list[BaseException] = field(default_factory=list)
    error: BaseException | None = None
    delay: float = 0.0

    async def act(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        if self.error is not None:
            raise self.error


@dataclass
class Call:
    """One recorded call: arguments, and start/end on `time.perf_counter()` (end is None when
    the call failed or was cancelled)."""

    op: str
    args: dict[str, Any]
    started: float
    ended: float | None = None


class _Recorder:
    """Records calls per operation; each operation has its own scriptable `Behaviour`."""

    primary: str = "call"

    def __init__(self) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self.calls: list[Call] = []

    def behaviour(self, op: str | None = None) -> Behaviour:
        return self.behaviours.setdefault(op or self.primary, Behaviour())

    def fail(self, error: BaseException, *, times: int | None = None, op: str | None = None) -> None:
        """Raise `error` on every call of `op` (default: the primary one), or on its next
        `times` calls only."""
        b = self.behaviour(op)
        if times is None:
            b.error = error
        else:
            b.errors.extend([error] * times)

    def stall(self, seconds: float, *, op: str | None = None) -> None:
        self.behaviour(op).delay = seconds

    def calls_of(self, op: str) -> list[Call]:
        return [c for c in self.calls if c.op == op]

    async def _run(self, op: str, **args: Any) -> Call:
        call = Call(op=op, args=args, started=time.perf_counter())
        self.calls.append(call)
        await self.behaviour(op).act()
        call.ended = time.perf_counter()
        return call


# --- the model ----------------------------------------------------------------------------------


def analysis(
    *,
    durable_fact: str | None = None,
    fact_kind: Literal["fact", "preference", "stressor"] | None = None,
    **scores: float,
) -> TurnAnalysis:
    """A `TurnAnalysis` with the given emotion scores, e.g. `analysis(sadness=0.8)`."""
    return TurnAnalysis(emotion=EmotionScores(**scores), durable_fact=durable_fact, fact_kind=fact_kind)


@dataclass
class ModelCall:
    kind: CallKind
    messages: list[BaseMessage]
    started: float
    ended: float | None = None

    @property
    def context(self) -> dict[str, Any]:
        """The `<context>` block of a reply prompt (emotion, memories, progress), or {}."""
        for msg in self.messages:
            if isinstance(msg, SystemMessage):
                ctx = parse_context_block(msg.text)
                if ctx is not None:
                    return ctx
        return {}


class ScriptedChatModel(OfflineChatModel):
    """The offline model with scripted answers. Structured calls (`with_structured_output`)
    answer the next queued analysis (else `default_analysis`, else the offline answerer);
    streamed/free-text calls answer the next queued reply (else `default_reply`). Either kind can
    be told to raise or to sleep; `break_after_first_token` raises mid-stream instead.
    Every call is recorded in `calls` with its prompt."""

    default_reply: str = "I hear you. One small step at a time."
    _analyses: list[BaseModel] = PrivateAttr(default_factory=list)
    _replies: list[str] = PrivateAttr(default_factory=list)
    _behaviour: dict[str, Behaviour] = PrivateAttr(default_factory=dict)
    _mid_stream_errors: list[BaseException] = PrivateAttr(default_factory=list)
    _default_analysis: BaseModel | None = PrivateAttr(default=None)
    _calls: list[ModelCall] = PrivateAttr(default_factory=list)

    # scripting

    def answer_analysis(self, *answers: BaseModel) -> ScriptedChatModel:
        self._analyses.extend(answers)
        return self

    def always_analyse(self, answer: BaseModel | None) -> ScriptedChatModel:
        self._default_analysis = answer
        return self

    def answer_reply(self, *replies: str) -> ScriptedChatModel:
        self._replies.extend(replies)
        return self

    def behaviour(self, kind: CallKind) -> Behaviour:
        return self._behaviour.setdefault(kind, Behaviour())

    def fail(self, kind: CallKind, error: BaseException, *, times: int | None = None) -> None:
        b = self.behaviour(kind)
        if times is None:
            b.error = error
        else:
            b.errors.extend([error] * times)

    def stall(self, kind: CallKind, seconds: float) -> None:
        self.behaviour(kind).delay = seconds

    def break_after_first_token(self, error: BaseException) -> None:
        self._mid_stream_errors.append(error)

    # inspection

    @property
    def calls(self) -> list[ModelCall]:
        return self._calls

    def calls_of(self, kind: CallKind) -> list[ModelCall]:
        return [c for c in self._calls if c.kind == kind]

    # the model

    def _scripted_text(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        key = kwargs.get("offline_schema")
        if key is None:
            return self._replies.pop(0) if self._replies else self.default_reply
        if self._analyses:
            return self._analyses.pop(0).model_dump_json()
        if self._default_analysis is not None:
            return self._default_analysis.model_dump_json()
        return super()._answer(messages, None, kwargs)

    async def _begin(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> ModelCall:
        kind: CallKind = "structured" if kwargs.get("offline_schema") else "reply"
        call = ModelCall(kind=kind, messages=list(messages), started=time.perf_counter())
        self._calls.append(call)
        await self.behaviour(kind).act()
        return call

    def _answer(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> str:
        return self._scripted_text(messages, kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("ScriptedChatModel is async only")

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError("ScriptedChatModel is async only")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = await self._begin(messages, kwargs)
        result = self._result(messages, self._answer(messages, stop, kwargs))
        call.ended = time.perf_counter()
        return result

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = await self._begin(messages, kwargs)
        text = self._answer(messages, stop, kwargs)
        for i, chunk in enumerate(self._chunks(messages, text)):
            if i == 1 and self._mid_stream_errors:
                raise self._mid_stream_errors.pop(0)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
        call.ended = time.perf_counter()


# --- services -----------------------------------------------------------------------------------


def hit(content: str, tier: Literal["personal", "project", "task"] = "personal") -> MemoryHit:
    return MemoryHit(id=str(uuid.uuid4()), tier=tier, content=content, score=0.9, similarity=0.8)


class FakeMemory(_Recorder):
    """`retrieve` answers `hits` (per tier, missing tiers empty); `add` records and returns
    (id, False), keeping `stored` keyed by id so idempotent rewrites are visible. Script them
    with `fail(...)`/`stall(...)` (retrieve) or `fail(..., op="add")`."""

    primary = "retrieve"

    def __init__(self, hits: dict[str, list[MemoryHit]] | None = None) -> None:
        super().__init__()
        self.hits: dict[str, list[MemoryHit]] = {t: [] for t in TIERS} | (hits or {})
        self.added: list[dict[str, Any]] = []
        self.stored: dict[str, dict[str, Any]] = {}

    async def retrieve(
        self,
        user_id: uuid.UUID,
        query: str,
        *,
        now: datetime,
        quotas: dict[str, int] | None = None,
        touch: bool = True,
    ) -> dict[str, list[MemoryHit]]:
        await self._run("retrieve", user_id=user_id, query=query, now=now, quotas=quotas, touch=touch)
        return {t: list(hs) for t, hs in self.hits.items()}

    async def add(
        self,
        user_id: uuid.UUID,
        tier: str,
        content: str,
        metadata: dict[str, Any] | None = None,
        *,
        now: datetime,
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


class FakeProgress(_Recorder):
    primary = "recent"

    def __init__(self, progress: Progress | None = None) -> None:
        super().__init__()
        self.progress = progress or Progress()

    async def recent(self, user_id: uuid.UUID, tz: str, now: datetime) -> Progress:
        await self._run("recent", user_id=user_id, tz=tz, now=now)
        return self.progress


class FakeWriteBack(_Recorder):
    """The chat write-back: records each `TurnRecord`; `memories` is keyed by memory id, so
    idempotent rewrites are visible. Script it with `fail(...)`/`stall(...)`."""

    primary = "write"

    def __init__(self) -> None:
        super().__init__()
        self.turns: list[TurnRecord] = []
        self.memories: dict[str, NewMemory] = {}

    async def write(self, turn: TurnRecord) -> WriteResult:
        await self._run("write", turn_key=turn.turn_key)
        self.turns.append(turn)
        for m in turn.memories:
            self.memories[str(m.id)] = m
        return WriteResult(embedded=True)


@dataclass
class UsageRecord:
    user_id: str | None
    site: str
    model: str
    usage: Usage


class FakeUsageSink:
    """A `UsageSink` that keeps what the gateway accounts, one record per model call."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    async def record(self, *, user_id: str | None, site: str, model: str, usage: Usage) -> None:
        self.records.append(UsageRecord(user_id, site, model, usage))


@dataclass
class FakeServices:
    """Duck-types `services.container.Services` for the chat graph's nodes."""

    settings: Settings
    model: ScriptedChatModel
    usage: FakeUsageSink
    llm: ModelGateway
    memory: FakeMemory
    progress: FakeProgress
    writeback: FakeWriteBack


def fake_services(
    *,
    model: ScriptedChatModel | None = None,
    hits: dict[str, list[MemoryHit]] | None = None,
    progress: Progress | None = None,
    **settings: Any,
) -> FakeServices:
    """Fakes around a real `Settings` (branch timeout 0.3 s, near-zero LLM backoff, unless
    overridden by keyword) and a real `ModelGateway` over one scripted model for both tiers."""
    defaults: dict[str, Any] = {
        "branch_timeout_s": 0.3,
        "llm_backoff_initial_s": 0.001,
        "llm_backoff_max_s": 0.01,
    }
    s = Settings(**(defaults | settings))
    m = model or ScriptedChatModel()
    sink = FakeUsageSink()
    return FakeServices(
        settings=s,
        model=m,
        usage=sink,
        llm=ModelGateway(s, {"cheap": m, "premium": m}, kind="offline", sink=sink),
        memory=FakeMemory(hits),
        progress=FakeProgress(progress),
        writeback=FakeWriteBack(),
    )
