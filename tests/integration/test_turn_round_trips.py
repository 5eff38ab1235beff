"""Database round trips of one chat turn, counted the way bench/probe.py counts them (every wait
on the server; a pipeline counts once): the real chat graph, in process, with the production
checkpointer and `durability="exit"` (the chat turn's durability under the run engine)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Overwrite

from bench.probe import COUNTER, count_round_trips
from graphs.chat import build
from graphs.registry import Graph
from nodes.context import Context
from state.schemas import Usage

# A turn reads the thread's checkpoint, recalls the three tiers, reads the week's progress,
# writes back in one transaction and saves the checkpoint: 5 today. The run engine adds its
# run row insert and finish update (<= 12 in all).
MAX_ROUND_TRIPS = 10


async def test_a_chat_turn_makes_at_most_ten_round_trips(services) -> None:
    graph: Graph = build(services.settings).compile(checkpointer=services.checkpointer)
    user = (await services.users.ensure(f"rt-{uuid.uuid4().hex[:8]}")).id
    thread = await services.threads.create(user)
    await services.memory.add(user, "personal", "The user's sister is called Maya.", now=datetime.now(UTC))

    async def turn(text: str) -> dict:
        ctx = Context(user_id=user, thread_id=thread, now=datetime.now(UTC), services=services)
        inputs = {
            "messages": [HumanMessage(text, id=str(uuid.uuid4()))],
            "usage": Overwrite(Usage()),
            "degraded": Overwrite([]),
        }
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        return await graph.ainvoke(inputs, config, context=ctx, durability="exit")

    await turn("Hello, I had a long day.")  # the thread now has history, as most turns do
    with count_round_trips((services.db.pool,)):
        before = COUNTER.total
        out = await turn("My sister Maya is visiting and I'm nervous about it.")
        trips = COUNTER.total - before

    assert out["degraded"] == [] and out["reply"]
    assert out["memories"]["personal"]  # recalled, so the write-back also moves access stats
    rows = await services.db.fetch("SELECT role FROM chat_messages WHERE thread_id = %s", (thread,))
    assert len(rows) == 4
    assert trips <= MAX_ROUND_TRIPS, f"{trips} database round trips in one chat turn"
