"""The stock skeleton the capacity test compares against: what following LangGraph's and FastAPI's
documentation gives you. The chat graph's shape (three gathering branches, a join, the reply, a
write-back) with the same simulated model and embedder (same SIM_* latencies, same prompts), the
default `AsyncPostgresSaver` on an `AsyncConnectionPool` (as its docs show, with the pool sized
like the service's), default durability, a plain FastAPI route, `uvicorn.run(app)` with its
defaults (one worker; uvicorn picks uvloop and httptools when installed, as they are here). No
auth, no memory store, no thread lock, no usage ledger, no gc.freeze.

    DATABASE_URL=postgresql://... PORT=8100 python -m bench.stock_app
    STOCK_SAVER=pooled ...   # the same skeleton on services/checkpointer.py's lock-free saver
"""

from __future__ import annotations

import operator
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypedDict, cast

import uvicorn
from fastapi import FastAPI, Request
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from core.settings import Settings
from prompts.chat import analysis_messages, reply_messages
from services.embeddings import build_embeddings
from services.llm.gateway import build_gateway
from state.schemas import TurnAnalysis


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    emotion: dict[str, float]
    recalled: Annotated[list[str], operator.add]
    reply: str


class ChatIn(BaseModel):
    message: str
    thread_id: str | None = None


def build_graph(settings: Settings) -> StateGraph:
    model = build_gateway(settings).models["cheap"]  # the same simulated model
    analyser = model.with_structured_output(TurnAnalysis)
    embeddings = build_embeddings(settings)  # the same simulated embedder

    async def detect_emotion(state: State) -> dict[str, Any]:
        analysis = cast(TurnAnalysis, await analyser.ainvoke(analysis_messages(state["messages"][-1].text)))
        return {"emotion": analysis.emotion.model_dump()}

    async def retrieve_memories(state: State) -> dict[str, Any]:
        await embeddings.aembed_query(state["messages"][-1].text)
        return {"recalled": []}

    async def load_progress(state: State) -> dict[str, Any]:
        return {}

    async def compose_reply(state: State) -> dict[str, Any]:
        prompt = reply_messages(state["messages"][-21:], emotion=state["emotion"], memories=[], progress={})
        text = ""
        async for chunk in model.astream(prompt):
            text += chunk.text
        return {"reply": text, "messages": [AIMessage(text)]}

    async def remember_exchange(state: State) -> dict[str, Any]:
        await embeddings.aembed_query(
            f"User said: {state['messages'][-2].text}\nEliza replied: {state['reply']}"
        )
        return {}

    g = StateGraph(State)
    for fn in (detect_emotion, retrieve_memories, load_progress, compose_reply, remember_exchange):
        g.add_node(fn)
    for branch in ("detect_emotion", "retrieve_memories", "load_progress"):
        g.add_edge(START, branch)
    g.add_edge(["detect_emotion", "retrieve_memories", "load_progress"], "compose_reply")
    g.add_edge("compose_reply", "remember_exchange")
    g.add_edge("remember_exchange", END)
    return g


def create_app() -> FastAPI:
    settings = Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncConnectionPool(
            settings.database_url or "",
            max_size=settings.db_pool_max,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            connection_class=AsyncConnection[DictRow],
            open=False,
        ) as pool:
            checkpointer: AsyncPostgresSaver
            if os.environ.get("STOCK_SAVER") == "pooled":  # the lever, measured on the skeleton
                from services.checkpointer import PooledPostgresSaver

                checkpointer = PooledPostgresSaver(pool, serde=JsonPlusSerializer())
            else:
                checkpointer = AsyncPostgresSaver(pool, serde=JsonPlusSerializer())
            await checkpointer.setup()
            app.state.graph = build_graph(settings).compile(checkpointer=checkpointer)
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/chat")
    async def chat(body: ChatIn, request: Request) -> dict[str, Any]:
        thread_id = body.thread_id or str(uuid.uuid4())
        out = await request.app.state.graph.ainvoke(
            {"messages": [HumanMessage(body.message)]}, {"configurable": {"thread_id": thread_id}}
        )
        return {"thread_id": thread_id, "reply": out["reply"]}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8100")))


if __name__ == "__main__":
    main()
