"""Typed state of the chat graph (seed Pattern 1). Its values are the models of `state.schemas`
(on the checkpointer's allow-list): a thread's turns are read back from its checkpoints."""

from __future__ import annotations

import operator
from typing import Annotated

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from state.reducers import add_usage
from state.schemas import Emotion, MemoryHit, Progress, TurnAnalysis, Usage


class ChatInput(TypedDict, total=False):
    # The conversation: a turn's input adds the user's message, compose_reply adds the answer.
    messages: Annotated[list[AnyMessage], add_messages]
    # Per-turn values written by parallel branches (hence reducers); each turn's input resets
    # them with `Overwrite` so they do not accumulate across the thread's turns.
    usage: Annotated[Usage, add_usage]
    degraded: Annotated[list[str], operator.add]  # branches that fell back (see above)


class ChatOutput(TypedDict, total=False):
    reply: str  # Eliza's answer to the user's last message
    emotion: Emotion  # how the user's message feels (neutral when the branch degraded)
    memories: dict[str, list[MemoryHit]]  # recalled memories, per tier
    progress: Progress  # the user's recent progress and DCI
    usage: Usage  # the turn's model usage
    degraded: list[str]  # branches that fell back to their default


class ChatState(ChatInput, total=False):
    emotion: Emotion  # see ChatOutput
    analysis: TurnAnalysis | None  # the turn's analysis (None when detect_emotion degraded)
    memories: dict[str, list[MemoryHit]]  # see ChatOutput
    progress: Progress  # see ChatOutput
    reply: str  # see ChatOutput
