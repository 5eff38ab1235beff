"""Nodes of the chat graph (seed Pattern 1). Each reads state, calls a service or a pure
function, and returns only the keys it changed."""

from __future__ import annotations

import uuid
from typing import Protocol

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.runtime import Runtime

from core.settings import Settings
from nodes.context import Context
from nodes.kit import Update, emit, observed
from nodes.ports import LlmPort, MemoryPort, ProgressPort, WriteBackPort
from prompts.chat import analysis_messages, exchange_memory, reply_messages
from services.usage import PER_TURN
from services.writeback import NewMemory, TurnRecord
from state.chat import ChatState
from state.schemas import TIERS, Emotion, Progress, TurnAnalysis, Usage

GRAPH = "chat"


class ChatServices(Protocol):
    """What the chat graph's nodes use of the services."""

    @property
    def settings(self) -> Settings: ...
    @property
    def llm(self) -> LlmPort: ...
    @property
    def memory(self) -> MemoryPort: ...
    @property
    def progress(self) -> ProgressPort: ...
    @property
    def writeback(self) -> WriteBackPort: ...


ChatRuntime = Runtime[Context[ChatServices]]


def last_user_text(messages: list[AnyMessage]) -> str:
    for msg in reversed(messages):
        if isinstance(msg, HumanMessage):
            return msg.text
    return ""


@observed(GRAPH)
async def detect_emotion(state: ChatState, runtime: ChatRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    analysis, usage = await svc.llm.structured(
        TurnAnalysis,
        analysis_messages(last_user_text(state["messages"])),
        site="chat.detect_emotion",
        user_id=str(ctx.user_id),
        sink=PER_TURN,  # the turn's usage is recorded once, by remember_exchange
    )
    return {
        "emotion": Emotion.from_scores(analysis.emotion.model_dump()),
        "analysis": analysis,
        "usage": usage,
    }


@observed(GRAPH)
async def retrieve_memories(state: ChatState, runtime: ChatRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    # Read-only: the hits' access stats are updated by the turn's write-back.
    hits = await svc.memory.retrieve(ctx.user_id, last_user_text(state["messages"]), now=ctx.now, touch=False)
    return {"memories": hits}


@observed(GRAPH)
async def load_progress(state: ChatState, runtime: ChatRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    return {"progress": await svc.progress.recent(ctx.user_id, ctx.timezone, ctx.now)}


@observed(GRAPH)
async def compose_reply(state: ChatState, runtime: ChatRuntime) -> Update:
    ctx = runtime.context
    svc = ctx.services
    emotion = state.get("emotion") or Emotion()
    memories = state.get("memories") or {}
    progress = state.get("progress") or Progress()
    history = state["messages"][-(2 * svc.settings.history_turns + 1) :]
    prompt = reply_messages(
        history,
        emotion=emotion.model_dump(),
        memories=[{"tier": h.tier, "content": h.content} for tier in TIERS for h in memories.get(tier, [])],
        progress=progress.model_dump(include={"completed", "skipped", "streak_days", "dci", "zone"}),
    )
    reply, usage = await svc.llm.stream_text(
        prompt,
        site="chat.compose_reply",
        user_id=str(ctx.user_id),
        on_token=lambda t: emit(runtime, {"type": "token", "content": t}),
        sink=PER_TURN,
    )
    return {"reply": reply, "messages": [AIMessage(reply, id=str(uuid.uuid4()))], "usage": usage}


@observed(GRAPH)
async def remember_exchange(state: ChatState, runtime: ChatRuntime) -> Update:
    """Last and idempotent: one transaction (task memory of the exchange, the durable fact,
    transcript, access stats of the recalled memories, the turn's usage row) whose ids derive
    from the user's message id, so a resumed or retried run writes nothing twice."""
    ctx = runtime.context
    svc = ctx.services
    human = next(m for m in reversed(state["messages"]) if isinstance(m, HumanMessage))
    ai = state["messages"][-1]
    exchange_id, fact_id = exchange_memory_ids(str(human.id))
    emotion = state.get("emotion") or Emotion()
    memories = [
        NewMemory(
            exchange_id,
            "task",
            exchange_memory(human.text, ai.text),
            {
                "thread_id": ctx.thread_id,
                "emotion": emotion.dominant,
                "emotion_scores": emotion.scores,  # read by adaptive_mission's energy estimate
                "emotion_at": ctx.now.isoformat(),
                "tags": ["chat"],
            },
        )
    ]
    analysis = state.get("analysis")
    if analysis is not None and analysis.durable_fact:
        memories.append(
            NewMemory(
                fact_id,
                "personal",
                analysis.durable_fact,
                {"kind": analysis.fact_kind, "source": "chat", "thread_id": ctx.thread_id},
            )
        )
    recalled = [uuid.UUID(h.id) for hits in (state.get("memories") or {}).values() for h in hits]
    await svc.writeback.write(
        TurnRecord(
            user_id=ctx.user_id,
            thread_id=str(ctx.thread_id),
            turn_key=f"chat:{human.id}",
            messages=[(str(human.id), "user", human.text), (str(ai.id), "assistant", ai.text)],
            memories=memories,
            recalled=recalled,
            usage=state.get("usage") or Usage(),
            model=svc.llm.model_name("cheap"),
            now=ctx.now,
        )
    )
    return {}


def exchange_memory_ids(human_id: str) -> list[uuid.UUID]:
    """The ids of the memories a turn writes (its exchange, its durable fact), from its message."""
    return [
        uuid.uuid5(uuid.NAMESPACE_URL, f"exchange:{human_id}"),
        uuid.uuid5(uuid.NAMESPACE_URL, f"fact:{human_id}"),
    ]


# Fallbacks (seed Pattern 1): the turn still answers without the failed branch.
def neutral_emotion() -> Update:
    return {"emotion": Emotion(), "analysis": None}


def no_memories() -> Update:
    return {"memories": {t: [] for t in TIERS}}


def no_progress() -> Update:
    return {"progress": Progress()}
