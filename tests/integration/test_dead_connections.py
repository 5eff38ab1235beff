"""Pooled connections that the server killed (restart, failover, `pg_terminate_backend`) are
detected at checkout without a round trip and replaced: the next chat turn does not fail."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import psycopg
from langchain_core.messages import HumanMessage
from langgraph.types import Overwrite

from core.settings import Settings
from graphs.chat import build
from nodes.context import Context
from services.container import Services
from state.schemas import Usage

POOL = 4


async def turn(graph, svc: Services, user: uuid.UUID, thread: str, text: str) -> dict:
    ctx = Context(user_id=user, thread_id=thread, now=datetime.now(UTC), services=svc)
    inputs = {
        "messages": [HumanMessage(text, id=str(uuid.uuid4()))],
        "usage": Overwrite(Usage()),
        "degraded": Overwrite([]),
    }
    return await graph.ainvoke(
        inputs, {"configurable": {"thread_id": thread}}, context=ctx, durability="exit"
    )


async def test_connections_killed_server_side_do_not_fail_a_turn(settings: Settings, pg_url: str) -> None:
    svc = await Services.open(settings.model_copy(update={"db_pool_min": POOL, "db_pool_max": POOL}))
    try:
        graph = build(svc.settings).compile(checkpointer=svc.checkpointer)
        user = (await svc.users.ensure(f"kill-{uuid.uuid4().hex[:8]}")).id
        thread = await svc.threads.create(user)
        assert (await turn(graph, svc, user, thread, "Hello there"))["degraded"] == []

        # Every connection of the pool, idle, then terminated by the server.
        held = [await svc.db.pool.getconn() for _ in range(POOL)]
        pids = [c.info.backend_pid for c in held]
        for c in held:
            await svc.db.pool.putconn(c)
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
            for _ in range(100):
                cur = await admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
                )
                row = await cur.fetchone()
                if row is not None and row[0] == 0:
                    break
                await asyncio.sleep(0.02)

        # Without detection the checkpointer's first read fails the run (AdminShutdown); with an
        # empty-query check per checkout, four dead connections in a row cost 0 + 1 + 2 + 4 s of
        # the pool's backoff and the checkout times out.
        out = await turn(graph, svc, user, thread, "I went for a run this morning")

        assert out["reply"] and out["degraded"] == []
        assert svc.db.pool.get_stats().get("connections_lost", 0) >= 1
        async with svc.db.pool.connection() as conn:
            assert conn.info.backend_pid not in pids
        rows = await svc.db.fetch("SELECT role FROM chat_messages WHERE thread_id = %s", (thread,))
        assert len(rows) == 4  # both turns recorded
    finally:
        await svc.close()
