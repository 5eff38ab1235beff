"""Typed state of the chat graph (seed Pattern 1)."""

from __future__ import annotations

import operator
from typing import Annotated

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict  # pydantic needs it for schemas on Python < 3.12

from state.schemas import Emotion, MemoryHit, Progress, TurnAnalysis, Usage


def add_usage(left: Usage | None, right: Usage | None) -> Usage:
    return (left or Usage()) + (right or Usage())


class ChatInput(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    # Per-turn values written by parallel branches (hence reducers); each turn's input resets
    # them with `Overwrite` so they do not accumulate across the thread's turns.
    usage: Annotated[Usage, add_usage]
    degraded: Annotated[list[str], operator.add]


class ChatOutput(TypedDict, total=False):
    reply: str
    emotion: Emotion
    memories: dict[str, list[MemoryHit]]
    progress: Progress
    usage: Usage
    degraded: list[str]


class ChatState(ChatInput, total=False):
    emotion: Emotion
    analysis: TurnAnalysis | None
    memories: dict[str, list[MemoryHit]]
    progress: Progress
    reply: str
