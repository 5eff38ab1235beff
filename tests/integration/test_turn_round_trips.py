"""Database round trips of one chat turn, counted the way bench/probe.py counts them (every wait
on the server; a pipeline counts once): a whole turn as a route runs it, through the run engine
(submit, the real chat graph with the production checkpointer and the chat turn's durability,
finish), in process, on a database of its own (no other engine's traffic in the count)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from api.turns import turn
from bench.probe import COUNTER, count_round_trips
from engine import Engine
from graphs.chat import build
from services.container import Services

# A turn: the run row's submit (admission, thread lock, insert: one function), the thread's
# checkpoint read, the recall of the three tiers, the week's progress, the write-back in one
# pipelined transaction, the checkpoint save, the run's finish (one function). The bound.
MAX_ROUND_TRIPS = 12


async def test_a_chat_turn_through_the_engine_makes_at_most_twelve_round_trips(
    own_services: Services,
) -> None:
    services = own_services
    graph: CompiledStateGraph[Any, Any, Any, Any] = build(services.settings).compile(
        checkpointer=services.checkpointer
    )
    engine = Engine(services, {"chat": graph}, queues=("api",))
    await engine.start()
    try:
        user = await services.users.ensure("dev:rt-user")
        await services.memory.add(
            user.id, "personal", "The user's sister is called Maya.", now=datetime.now(UTC)
        )
        first = await engine.run(turn(user, None, "Hello, I had a long day."))
        assert first.status == "success", first.error
        await asyncio.sleep(0.1)  # the first turn's own notifications are in
        with count_round_trips((services.db.pool,)):
            before = COUNTER.total
            record = await engine.run(
                turn(user, first.thread_id, "My sister Maya is visiting and I'm nervous.")
            )
            trips = COUNTER.total - before
    finally:
        await engine.close()

    assert record.status == "success", record.error
    out = record.output or {}
    assert out["degraded"] == [] and out["reply"]
    assert out["memories"]["personal"]  # recalled, so the write-back also moves access stats
    rows = await services.db.fetch("SELECT role FROM chat_messages WHERE thread_id = %s", (record.thread_id,))
    assert len(rows) == 4
    assert trips <= MAX_ROUND_TRIPS, f"{trips} database round trips in one chat turn"
