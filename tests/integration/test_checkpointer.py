"""`PooledPostgresSaver` (services/checkpointer.py) on the embedded Postgres: no per-instance lock
(two calls run at once), concurrent puts and reads from many tasks on many graph threads (and
from OS threads through the sync bridge) are all persisted and readable, and a chat-like graph
run through it fans out, fails, resumes from the failed node and keeps a linear history."""

from __future__ import annotations

import asyncio
import operator
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Durability
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from services.checkpointer import PooledPostgresSaver
from services.container import CHECKPOINT_TYPES

pytestmark = pytest.mark.db
Pool = AsyncConnectionPool[AsyncConnection[DictRow]]


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[Pool]:
    p = Pool(
        pg_url,
        connection_class=AsyncConnection[DictRow],
        min_size=2,
        max_size=12,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=AsyncConnectionPool.check_connection,
        open=False,
    )
    await p.open(wait=True)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def saver(pool: Pool) -> PooledPostgresSaver:
    s = PooledPostgresSaver(pool, serde=JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES))
    await s.setup()
    return s


def _checkpoint(step: int, payload: dict[str, Any]) -> Any:
    cp = empty_checkpoint()
    cp["channel_values"] = {"step": step, "payload": payload}
    cp["channel_versions"] = {"step": step + 1, "payload": step + 1}
    return cp


async def test_refuses_a_single_connection(pg_url: str) -> None:
    conn = await psycopg.AsyncConnection.connect(pg_url, autocommit=True, row_factory=dict_row)
    try:
        with pytest.raises(TypeError):
            PooledPostgresSaver(conn)  # type: ignore[arg-type]  # on purpose: a connection, not a pool
    finally:
        await conn.close()


async def _read_while_busy(saver: AsyncPostgresSaver) -> float:
    """Seconds an `aget_tuple` takes while another call holds a cursor for 0.4 s."""

    async def busy() -> None:
        async with saver._cursor() as cur:
            await cur.execute("SELECT pg_sleep(0.4)")

    task = asyncio.create_task(busy())
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    await saver.aget_tuple({"configurable": {"thread_id": f"idle-{uuid.uuid4()}", "checkpoint_ns": ""}})
    elapsed = time.perf_counter() - t0
    await task
    return elapsed


async def test_calls_do_not_queue_behind_one_another(pool: Pool, saver: PooledPostgresSaver) -> None:
    stock = AsyncPostgresSaver(pool)
    assert await _read_while_busy(stock) >= 0.3  # the upstream lock: the read waits its turn
    assert await _read_while_busy(saver) < 0.2  # its own pooled connection: no wait


async def test_concurrent_puts_and_reads_are_all_persisted(saver: PooledPostgresSaver) -> None:
    threads = [f"ckpt-{uuid.uuid4()}" for _ in range(40)]
    steps = 4
    reads = 0

    async def write_chain(thread_id: str) -> None:
        config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        for step in range(steps):
            cp = _checkpoint(step, {"thread": thread_id, "step": step, "text": "x" * 300})
            config = await saver.aput(
                config, cp, {"source": "loop", "step": step, "parents": {}}, cp["channel_versions"]
            )
            await saver.aput_writes(config, [("payload", {"w": step}), ("step", step)], f"task-{step}")

    async def read_while_writing(thread_id: str) -> None:
        nonlocal reads
        for _ in range(steps):
            got = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
            if got is not None:
                assert got.checkpoint["channel_values"]["payload"]["thread"] == thread_id
                reads += 1
            await asyncio.sleep(0)

    await asyncio.gather(
        *(write_chain(t) for t in threads),
        *(read_while_writing(t) for t in threads),
    )
    assert reads > 0

    for thread_id in threads:
        config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        history = [c async for c in saver.alist(config)]
        assert len(history) == steps
        latest = history[0]
        assert latest.checkpoint["channel_values"]["payload"] == {
            "thread": thread_id,
            "step": steps - 1,
            "text": "x" * 300,
        }
        assert sorted(w[1:] for w in latest.pending_writes or []) == [
            ("payload", {"w": steps - 1}),
            ("step", steps - 1),
        ]
        # One linear chain: each checkpoint's parent is the one saved before it.
        ids = [c.config["configurable"]["checkpoint_id"] for c in history]
        parents = [
            c.parent_config["configurable"]["checkpoint_id"] if c.parent_config else None for c in history
        ]
        assert parents == [*ids[1:], None]


async def test_sync_bridge_from_os_threads(saver: PooledPostgresSaver) -> None:
    """The sync methods hop onto the saver's loop; many OS threads at once all land."""
    threads = [f"os-{uuid.uuid4()}" for _ in range(16)]

    def put(thread_id: str) -> None:
        cp = _checkpoint(0, {"thread": thread_id})
        config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        saved = saver.put(config, cp, {"source": "input", "step": -1, "parents": {}}, cp["channel_versions"])
        saver.put_writes(saved, [("payload", {"from": "os-thread"})], "t0")
        got = saver.get_tuple(config)
        assert got is not None and got.checkpoint["channel_values"]["payload"] == {"thread": thread_id}

    # Own OS threads: the saver itself uses the default executor (`asyncio.to_thread`) to
    # serialise, and callers blocked in it would starve it.
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=len(threads)) as pool:
        await asyncio.gather(*(loop.run_in_executor(pool, put, t) for t in threads))
    for thread_id in threads:
        got = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
        assert got is not None
        assert got.pending_writes and got.pending_writes[0][1:] == ("payload", {"from": "os-thread"})


# --- a chat-like graph: three branches fan out, a join, a reply that fails once -----------------


class ChatLike(TypedDict, total=False):
    message: str
    notes: Annotated[list[str], operator.add]
    reply: str


class Calls:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.fail_reply = True

    def hit(self, node: str) -> None:
        self.counts[node] = self.counts.get(node, 0) + 1


def chat_like(calls: Calls) -> StateGraph:
    def branch(name: str):
        async def run(state: ChatLike) -> dict[str, Any]:
            calls.hit(name)
            await asyncio.sleep(0.01)
            return {"notes": [f"{name}:{state['message']}"]}

        run.__name__ = name
        return run

    async def compose(state: ChatLike) -> dict[str, Any]:
        calls.hit("compose")
        if calls.fail_reply:
            calls.fail_reply = False
            raise RuntimeError("model crashed mid-turn")
        return {"reply": " | ".join(sorted(state["notes"]))}

    async def remember(state: ChatLike) -> dict[str, Any]:
        calls.hit("remember")
        return {}

    g = StateGraph(ChatLike)
    for name in ("emotion", "memories", "progress"):
        g.add_node(name, branch(name))
        g.add_edge(START, name)
    g.add_node("compose", compose)
    g.add_node("remember", remember)
    g.add_edge(["emotion", "memories", "progress"], "compose")
    g.add_edge("compose", "remember")
    g.add_edge("remember", END)
    return g


@pytest.mark.parametrize("durability", ["async", "sync", "exit"])
async def test_chat_like_graph_resumes_from_the_failed_node(
    saver: PooledPostgresSaver, durability: Durability
) -> None:
    """In every durability mode a failed run saves what its finished nodes wrote ("exit" saves it
    when the run ends, on error too), so the retry re-runs only the failed node."""
    calls = Calls()
    graph = chat_like(calls).compile(checkpointer=saver)
    config: RunnableConfig = {"configurable": {"thread_id": f"resume-{uuid.uuid4()}"}}

    with pytest.raises(RuntimeError, match="model crashed"):
        await graph.ainvoke({"message": "hi"}, config, durability=durability)
    snap = await graph.aget_state(config)
    assert snap.next == ("compose",)
    assert sorted(snap.values["notes"]) == ["emotion:hi", "memories:hi", "progress:hi"]

    out = await graph.ainvoke(None, config, durability=durability)  # resume
    assert out["reply"] == "emotion:hi | memories:hi | progress:hi"
    assert calls.counts == {"emotion": 1, "memories": 1, "progress": 1, "compose": 2, "remember": 1}

    history = [s async for s in graph.aget_state_history(config)]
    ids = [s.config["configurable"]["checkpoint_id"] for s in history]
    parents = [s.parent_config["configurable"]["checkpoint_id"] if s.parent_config else None for s in history]
    assert parents == [*ids[1:], None]  # linear: no fork


async def test_many_concurrent_runs_each_keep_their_own_turns(saver: PooledPostgresSaver) -> None:
    """Thirty threads, two turns each, all at once: every thread ends with exactly its own two
    turns and a linear history."""

    async def two_turns(i: int) -> tuple[str, list[str]]:
        calls = Calls()
        calls.fail_reply = False
        graph = chat_like(calls).compile(checkpointer=saver)
        config: RunnableConfig = {"configurable": {"thread_id": f"many-{i}-{uuid.uuid4()}"}}
        await graph.ainvoke({"message": f"a{i}"}, config)
        out = await graph.ainvoke({"message": f"b{i}"}, config)
        history = [s async for s in graph.aget_state_history(config)]
        ids = [s.config["configurable"]["checkpoint_id"] for s in history]
        parents = [
            s.parent_config["configurable"]["checkpoint_id"] if s.parent_config else None for s in history
        ]
        assert parents == [*ids[1:], None]
        return out["reply"], out["notes"]

    results = await asyncio.gather(*(two_turns(i) for i in range(30)))
    for i, (reply, notes) in enumerate(results):
        assert sorted(notes) == sorted(
            f"{b}:{m}" for m in (f"a{i}", f"b{i}") for b in ("emotion", "memories", "progress")
        )
        assert reply == " | ".join(sorted(notes))


async def test_async_commit_writes_are_atomic_and_leave_the_connection_clean(pg_url: str) -> None:
    """RUN_ASYNC_COMMIT: a checkpoint write is one transaction with synchronous_commit off for
    it alone. On the pool's only connection: a write that fails half-way leaves nothing, and the
    next user of the connection finds it idle, with synchronous_commit as it was."""
    pool = Pool(
        pg_url,
        connection_class=AsyncConnection[DictRow],
        min_size=1,
        max_size=1,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        open=False,
    )
    await pool.open(wait=True)
    try:
        saver = PooledPostgresSaver(
            pool, serde=JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES), synchronous_commit=False
        )
        await saver.setup()

        async def connection_state() -> tuple[str, psycopg.pq.TransactionStatus]:
            async with pool.connection() as conn:
                cur = await conn.execute("SHOW synchronous_commit")
                row = await cur.fetchone()
                assert row is not None
                return row["synchronous_commit"], conn.info.transaction_status

        thread = f"async-commit-{uuid.uuid4()}"
        config: RunnableConfig = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        cp = _checkpoint(0, {"text": "kept"})
        saved = await saver.aput(
            config, cp, {"source": "input", "step": 0, "parents": {}}, cp["channel_versions"]
        )
        await saver.aput_writes(saved, [("payload", {"w": 0})], "task-0")
        got = await saver.aget_tuple(config)
        assert got is not None and got.checkpoint["channel_values"]["payload"] == {"text": "kept"}
        assert [w[1:] for w in got.pending_writes or []] == [("payload", {"w": 0})]
        assert await connection_state() == ("on", psycopg.pq.TransactionStatus.IDLE)
        async with saver._cursor(pipeline=True) as cur:  # inside a write: off, for it alone
            await cur.execute("SELECT current_setting('synchronous_commit') AS s")
            assert await cur.fetchone() == {"s": "off"}
        assert await connection_state() == ("on", psycopg.pq.TransactionStatus.IDLE)

        # A write whose first statement lands and whose second fails, as a blob upsert followed
        # by a refused checkpoint row would.
        with pytest.raises(psycopg.errors.DivisionByZero):
            async with saver._cursor(pipeline=True) as cur:
                await cur.execute(
                    """INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
                       VALUES (%s, '', 'payload', 'lost', 'empty', NULL)""",
                    (thread,),
                )
                await cur.execute("SELECT 1 / 0")
        assert await connection_state() == ("on", psycopg.pq.TransactionStatus.IDLE)
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM checkpoint_blobs WHERE thread_id = %s AND version = 'lost'",
                (thread,),
            )
            row = await cur.fetchone()
        assert row is not None and row["n"] == 0  # nothing of the failed write is left
        latest = await saver.aget_tuple(config)
        assert latest is not None and latest.checkpoint["channel_values"]["payload"] == {"text": "kept"}
    finally:
        await pool.close()
