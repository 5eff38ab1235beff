"""The chat graph (seed Pattern 1: fan-out, fan-in).

    START ─┬─ detect_emotion ────┐
           ├─ retrieve_memories ─┼─ compose_reply ── remember_exchange ── END
           └─ load_progress ─────┘

The three gathering branches are independent and run in one superstep. Each has a timeout and
an error handler that writes the seed's fallback (neutral emotion, no memories, empty progress)
and names the branch in `degraded`, so a failed branch never fails the turn.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, HumanMessage, convert_to_messages
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, StateGraph
from langgraph.types import Overwrite

from core.errors import Invalid
from core.settings import Settings, get_settings
from nodes.chat import (
    GRAPH,
    compose_reply,
    detect_emotion,
    exchange_memory_ids,
    load_progress,
    neutral_emotion,
    no_memories,
    no_progress,
    remember_exchange,
    retrieve_memories,
)
from nodes.context import Context, studio_graph
from nodes.kit import DB_RETRY, Branch, gather
from state.chat import ChatInput, ChatOutput, ChatState
from state.schemas import Usage

if TYPE_CHECKING:
    from graphs.registry import Settlement


def build(settings: Settings | None = None) -> StateGraph[ChatState, Context[Any], ChatInput, ChatOutput]:
    s = settings or get_settings()
    g = StateGraph(ChatState, context_schema=Context, input_schema=ChatInput, output_schema=ChatOutput)
    gathering = (
        Branch(detect_emotion, neutral_emotion, retry=False),  # a model call: the gateway retries
        Branch(retrieve_memories, no_memories),
        Branch(load_progress, no_progress),
    )
    gather(
        g, GRAPH, gathering, join=compose_reply, timeout=s.branch_timeout_s, join_timeout=s.reply_timeout_s
    )
    g.add_node(remember_exchange, retry_policy=DB_RETRY)
    g.add_edge("compose_reply", "remember_exchange")
    g.add_edge("remember_exchange", END)
    return g


# For `langgraph.json` / LangGraph Studio: no checkpointer (the platform brings its own).
graph = studio_graph(build(), GRAPH)


# --- how the run engine runs a turn (graphs/registry.py: Workflow hooks) ---------------------


def normalize_input(value: Any) -> Any:
    """At submit: messages in the graph's JSON form, each with an id fixed now, so a retried or
    resumed turn writes its transcript and memories under the same keys (nothing twice)."""
    if value is None:
        return None
    if not isinstance(value, dict) or "messages" not in value:
        raise Invalid("chat input needs `messages`")
    raw = value["messages"]
    try:
        messages = convert_to_messages(raw if isinstance(raw, list) else [raw])
    except (ValueError, TypeError, NotImplementedError) as err:
        raise Invalid(f"messages: {err}") from err
    from engine.events import jsonable

    for m in messages:
        m.id = m.id or str(uuid.uuid4())
    return {**value, "messages": [jsonable(m) for m in messages]}


def prepare_input(value: Any) -> Any:
    """Each turn starts its per-turn values afresh (they have reducers for the parallel branches)."""
    if value is None:
        return None
    return {**value, "usage": Overwrite(Usage()), "degraded": Overwrite([])}


def _human(value: Any) -> HumanMessage | None:
    if not isinstance(value, dict):
        return None
    humans = [m for m in convert_to_messages(value.get("messages") or []) if isinstance(m, HumanMessage)]
    return humans[-1] if humans else None


async def settle_turn(s: Settlement) -> tuple[str, Any]:
    """A turn that did not succeed leaves thread state, transcript and memories agreeing (README,
    "A turn's outcome"). The write-back's commit is the turn's commit point:
    - committed (the reply is in the transcript and memories): the thread state gets the exchange
      too if the final checkpoint was lost, and the turn counts as answered;
    - not committed: nothing of the turn stays in the thread state (its checkpoints are deleted),
      and the transcript keeps the user's message marked `failed`, so it is never lost and never
      reaches a prompt; an interrupted turn (a newer message superseded it) keeps its message in
      the state for the next turn to read, marked `interrupted` in the transcript;
    - rolled back: the turn disappears from all three."""
    human = _human(s.run.input)
    svc, thread, user = s.services, s.run.thread_id, s.run.user_id
    if human is None or user is None:  # a resume or an update without a new message
        if s.outcome == "rollback":
            await s.forget_checkpoints()
        return ("error" if s.outcome == "crashed" else s.outcome), None
    human_id = str(human.id)
    reply = await svc.threads.reply_to(thread, human_id)
    if s.outcome == "rollback":
        if reply is not None:
            await svc.threads.forget_messages(thread, [human_id, reply[0]])
            await svc.memory.forget(user, exchange_memory_ids(human_id))
        await s.forget_checkpoints()
        return "rollback", None
    if reply is not None:
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        snap = await s.graph.aget_state(config)
        if not any(m.id == human_id for m in snap.values.get("messages", [])):
            exchange = [HumanMessage(human.text, id=human_id), AIMessage(reply[1], id=reply[0])]
            await s.graph.aupdate_state(config, {"messages": exchange}, as_node="remember_exchange")
        return ("interrupted" if s.outcome == "interrupted" else "success"), {"reply": reply[1]}
    if s.outcome == "interrupted":  # the transcript records what the state kept of the turn
        await svc.threads.mark_message(thread, user, human_id, human.text, "interrupted")
        kept = (await s.graph.aget_state({"configurable": {"thread_id": thread}})).values.get("messages", [])
        ids = [m.id for m in kept]
        for m in kept[ids.index(human_id) + 1 :] if human_id in ids else []:
            if isinstance(m, AIMessage):
                await svc.threads.mark_message(
                    thread, user, str(m.id), m.text, "interrupted", role="assistant"
                )
        return "interrupted", None
    await s.forget_checkpoints()
    await svc.threads.mark_message(thread, user, human_id, human.text, "failed")
    return ("timeout" if s.outcome == "timeout" else "error"), None
