"""Checkpointing on Postgres: a failed turn resumes from the failed node; the per-thread lock
serialises turns across connection pools (as it does across processes)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Overwrite

from graphs.chat import build
from graphs.registry import Graph
from nodes.context import Context
from services.llm.gateway import ModelGateway
from state.schemas import Usage


class FlakyReplyGateway(ModelGateway):
    """The real offline gateway, except the first reply fails for good (not transient)."""

    def __init__(self, inner: ModelGateway) -> None:
        super().__init__(inner.settings, inner.models, kind=inner.kind, sink=inner.sink)
        self.structured_calls = 0
        self.reply_calls = 0

    async def structured(self, *args, **kwargs):
        self.structured_calls += 1
        return await super().structured(*args, **kwargs)

    async def stream_text(self, *args, **kwargs):
        self.reply_calls += 1
        if self.reply_calls == 1:
            raise RuntimeError("model crashed mid-turn")
        return await super().stream_text(*args, **kwargs)


async def test_failed_turn_resumes_from_the_failed_node(services) -> None:
    flaky = FlakyReplyGateway(services.llm)
    svc = dataclasses.replace(services, llm=flaky)
    graph: Graph = build(services.settings).compile(checkpointer=services.checkpointer)
    user = await services.users.ensure(f"resume-{uuid.uuid4().hex[:8]}")
    thread_id = await services.threads.create(user.id)
    ctx = Context(user_id=user.id, thread_id=thread_id, now=datetime.now(UTC), services=svc)
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    inputs = {
        "messages": [HumanMessage("I love my new job", id=str(uuid.uuid4()))],
        "usage": Overwrite(Usage()),
        "degraded": Overwrite([]),
    }

    try:
        await graph.ainvoke(inputs, config, context=ctx)
        raise AssertionError("the first run should fail")
    except RuntimeError as err:
        assert "model crashed" in str(err)
    snap = await graph.aget_state(config)
    assert snap.next == ("compose_reply",)
    assert snap.values["emotion"].dominant in ("love", "joy")  # the branches' work was saved

    out = await graph.ainvoke(None, config, context=ctx)  # resume
    assert out["reply"]
    assert flaky.structured_calls == 1  # detect_emotion did not run again
    assert flaky.reply_calls == 2
    rows = await services.db.fetch(
        "SELECT role FROM chat_messages WHERE thread_id = %s ORDER BY created_at", (thread_id,)
    )
    assert [r["role"] for r in rows] == ["user", "assistant"]
