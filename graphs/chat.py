"""The chat graph (seed Pattern 1: fan-out, fan-in).

    START ─┬─ detect_emotion ────┐
           ├─ retrieve_memories ─┼─ compose_reply ── remember_exchange ── END
           └─ load_progress ─────┘

The three gathering branches are independent and run in one superstep. Each has a timeout and
an error handler that writes the seed's fallback (neutral emotion, no memories, empty progress)
and names the branch in `degraded`, so a failed branch never fails the turn.
"""

from __future__ import annotations

import psycopg
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy
from psycopg_pool import PoolTimeout

from core.errors import Unavailable
from core.settings import Settings, get_settings
from nodes.chat import (
    GRAPH,
    compose_reply,
    detect_emotion,
    load_progress,
    neutral_emotion,
    no_memories,
    no_progress,
    remember_exchange,
    retrieve_memories,
)
from nodes.context import Context, fallback
from state.chat import ChatInput, ChatOutput, ChatState

# Transient database trouble is worth one more quick attempt; model calls retry inside the
# gateway (services/llm/retry.py), so they are not listed here: one retry layer per call.
DB_RETRY = RetryPolicy(
    max_attempts=2,
    initial_interval=0.05,
    jitter=True,
    retry_on=(psycopg.OperationalError, PoolTimeout, Unavailable),
)


def build(settings: Settings | None = None) -> StateGraph:
    s = settings or get_settings()
    g = StateGraph(ChatState, context_schema=Context, input_schema=ChatInput, output_schema=ChatOutput)
    g.add_node(
        detect_emotion,
        timeout=s.branch_timeout_s,
        error_handler=fallback(GRAPH, neutral_emotion, then="compose_reply"),
    )
    g.add_node(
        retrieve_memories,
        timeout=s.branch_timeout_s,
        retry_policy=DB_RETRY,
        error_handler=fallback(GRAPH, no_memories, then="compose_reply"),
    )
    g.add_node(
        load_progress,
        timeout=s.branch_timeout_s,
        retry_policy=DB_RETRY,
        error_handler=fallback(GRAPH, no_progress, then="compose_reply"),
    )
    g.add_node(compose_reply, timeout=s.reply_timeout_s)
    g.add_node(remember_exchange, retry_policy=DB_RETRY)
    for branch in ("detect_emotion", "retrieve_memories", "load_progress"):
        g.add_edge(START, branch)
    g.add_edge(["detect_emotion", "retrieve_memories", "load_progress"], "compose_reply")
    g.add_edge("compose_reply", "remember_exchange")
    g.add_edge("remember_exchange", END)
    return g


# For `langgraph.json` / LangGraph Studio: no checkpointer (the platform brings its own).
graph = build().compile(name=GRAPH)
