"""In-process measurements on the real chat graph, real services and real Postgres (no HTTP):
fan-out efficiency and the sequential speedup, checkpointer cost (CPU and round trips with and
without it), durability modes, LangGraph's own overhead against plain `asyncio.gather` over the
same simulated calls, and the checkpointer lock under concurrent turns.

Variants are interleaved (one turn of each in turn), so machine noise spreads over all of them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Overwrite

from bench.env import process_tree_cpu_s
from bench.probe import COUNTER, count_round_trips
from bench.sim import SimProfile, message
from bench.stats import mean, p50, summary
from core.settings import Settings
from engine import Engine, RunRequest
from graphs.chat import build as build_chat
from nodes.chat import compose_reply, detect_emotion, load_progress, remember_exchange, retrieve_memories
from nodes.context import Context
from prompts.chat import analysis_messages, reply_messages
from services.checkpointer import PooledPostgresSaver
from services.container import CHECKPOINT_TYPES, Services
from services.llm.gateway import ModelGateway
from state.chat import ChatInput, ChatOutput, ChatState
from state.schemas import TurnAnalysis, Usage


@dataclass
class Sample:
    wall_ms: float
    cpu_ms: float
    round_trips: int
    pool_checks: int
    pg_cpu_ms: float | None
    cp_ms: float
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class Variant:
    name: str
    run: Callable[[int], Awaitable[tuple[str, dict[str, Any]]]]  # iteration -> (message, output)
    samples: list[Sample] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        s = self.samples
        walls = [x.wall_ms for x in s]
        pg = [x.pg_cpu_ms for x in s if x.pg_cpu_ms is not None]
        return {
            "n": len(s),
            "wall_ms": summary(walls),
            "critical_path_ms_p50": p50([x.cp_ms for x in s]),
            "wall_over_critical_path_p50": p50([x.wall_ms / x.cp_ms for x in s]),
            "cpu_ms_per_turn": mean([x.cpu_ms for x in s]),
            "pg_cpu_ms_per_turn": mean(pg) if pg else None,
            "round_trips_per_turn": mean([x.round_trips for x in s]),
            "pool_checks_per_turn": mean([x.pool_checks for x in s]),
            "llm_calls_per_turn": mean([x.calls for x in s]),
            "input_tokens_per_turn": mean([x.input_tokens for x in s]),
            "output_tokens_per_turn": mean([x.output_tokens for x in s]),
            "cost_usd_per_turn": mean([x.cost_usd for x in s]),
            "raw": {
                "wall_ms": [round(x.wall_ms, 3) for x in s],
                "cpu_ms": [round(x.cpu_ms, 3) for x in s],
                "cp_ms": [round(x.cp_ms, 3) for x in s],
                "round_trips": [x.round_trips for x in s],
            },
        }


def serde() -> JsonPlusSerializer:
    return JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES)


def chat_inputs(text: str) -> dict[str, Any]:
    """The graph's input for one turn, as the engine prepares it (graphs/chat.py)."""
    return {
        "messages": [HumanMessage(text, id=str(uuid.uuid4()))],
        "usage": Overwrite(Usage()),
        "degraded": Overwrite([]),
    }


class Turns:
    """Chat turns as the service runs them: runs of an engine on `graph`, so a turn's cost
    includes its run row (submit, finish) as well as the graph and its checkpoints. Variants
    given the same `engine` share it (one set of background loops in the round-trip counts);
    each puts its graph in before its turn (turns of different variants never overlap)."""

    def __init__(
        self, svc: Services, graph: CompiledStateGraph[Any, Any, Any, Any], engine: Engine | None = None
    ) -> None:
        self.graph = graph
        self.own = engine is None
        self.engine = engine or Engine(svc, {"chat": graph}, queues=("api",), max_running=10_000)

    async def __aenter__(self) -> Turns:
        if self.own:
            await self.engine.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.own:
            await self.engine.close()

    async def run(
        self, user: uuid.UUID, thread: str | None, text: str, durability: str | None = None
    ) -> dict[str, Any]:
        self.engine.graphs["chat"] = self.graph
        record = await self.engine.run(
            RunRequest(
                "chat",
                {"messages": [{"type": "human", "content": text}]},
                user=user,
                thread_id=thread,
                durability=durability,
                admit=False,
            )
        )
        if record.status != "success":
            raise RuntimeError(f"turn ended {record.status}: {record.error}")
        return {**(record.output or {}), "thread_id": record.thread_id}


def sequential_chat(settings: Settings) -> StateGraph[ChatState, Context[Any], ChatInput, ChatOutput]:
    """The chat graph's five nodes run one after the other (the speedup baseline)."""
    g = StateGraph(ChatState, context_schema=Context, input_schema=ChatInput, output_schema=ChatOutput)
    order = (detect_emotion, retrieve_memories, load_progress, compose_reply, remember_exchange)
    for node in order:
        g.add_node(node)
    g.add_edge(START, order[0].__name__)
    for a, b in itertools.pairwise(order):
        g.add_edge(a.__name__, b.__name__)
    g.add_edge(order[-1].__name__, END)
    return g


class Skeleton(TypedDict, total=False):
    text: str
    emotion: dict[str, float]
    vector: list[float]
    reply: str


class Harness:
    def __init__(self, svc: Services, profile: SimProfile, users: dict[str, uuid.UUID], pg_pid: int | None):
        self.svc = svc
        self.profile = profile
        self.users = list(users.values())
        self.pg_pid = pg_pid
        self.nonce = 0

    def next_message(self, i: int) -> str:
        self.nonce += 1
        return message(i, f"ip{self.nonce}")

    # --- one chat turn through a compiled graph --------------------------------------------------

    def chat_variant(
        self,
        name: str,
        turns: Turns,
        user_slice: slice,
        durability: str | None = None,
        pool_check: bool = True,
        async_commit: bool = False,
    ) -> Variant:
        users = self.users[user_slice]
        threads: dict[uuid.UUID, str | None] = dict.fromkeys(users)
        pool = self.svc.db.pool
        saver, runs = self.svc.checkpointer, self.svc.runs

        async def run(i: int) -> tuple[str, dict[str, Any]]:
            user = users[i % len(users)]
            text = self.next_message(i)
            check = pool._check
            # Turns run one at a time here, so these switches touch only this turn.
            if not pool_check:
                pool._check = None
            commits = (getattr(saver, "synchronous_commit", True), runs.async_commit)
            if async_commit:  # RUN_ASYNC_COMMIT=true: checkpoint writes and finish do not wait for the flush
                setattr(saver, "synchronous_commit", False)  # noqa: B010  (production saver only)
                runs.async_commit = True
            try:
                out = await turns.run(user, threads[user], text, durability)
            finally:
                pool._check = check
                setattr(saver, "synchronous_commit", commits[0])  # noqa: B010
                runs.async_commit = commits[1]
            threads[user] = out["thread_id"]
            return text, out

        return Variant(name, run)

    async def measure(self, variants: list[Variant], iterations: int, warmup: int = 1) -> None:
        for i in range(warmup):
            for v in variants:
                await v.run(i)
        for i in range(iterations):
            # Rotated each round: no variant always runs first (or right after the same one).
            shift = i % len(variants)
            for v in variants[shift:] + variants[:shift]:
                await self._sample(v, i)

    async def _sample(self, v: Variant, i: int) -> None:
        pg0 = process_tree_cpu_s(self.pg_pid)
        rt0, chk0 = COUNTER.snapshot()
        c0, t0 = time.process_time(), time.perf_counter()
        text, out = await v.run(i)
        t1, c1 = time.perf_counter(), time.process_time()
        rt1, chk1 = COUNTER.snapshot()
        pg1 = process_tree_cpu_s(self.pg_pid)
        usage = Usage(**(out.get("usage") or {}))
        reply = out.get("reply", "")
        v.samples.append(
            Sample(
                wall_ms=(t1 - t0) * 1000,
                cpu_ms=(c1 - c0) * 1000,
                round_trips=rt1 - rt0,
                pool_checks=chk1 - chk0,
                pg_cpu_ms=(pg1 - pg0) * 1000 if pg0 is not None and pg1 is not None else None,
                cp_ms=self.profile.critical_path_ms(text, reply),
                calls=usage.calls,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cost_usd=usage.cost_usd,
            )
        )

    # --- the same simulated calls, without the database: graph vs asyncio.gather ---------------

    def framework_variants(self) -> list[Variant]:
        gw = ModelGateway(self.svc.settings, self.svc.llm.models, kind="offline")  # no usage rows
        emb = self.svc.embeddings

        async def analyse(text: str) -> dict[str, float]:
            analysis, _ = await gw.structured(
                TurnAnalysis, analysis_messages(text), site="bench", user_id=None
            )
            return analysis.emotion.model_dump()

        async def reply(text: str, emotion: dict[str, float]) -> str:
            prompt = reply_messages([HumanMessage(text)], emotion=emotion, memories=[], progress={})
            out, _ = await gw.stream_text(prompt, site="bench", user_id=None)
            return out

        async def n_analyse(state: Skeleton) -> dict[str, Any]:
            return {"emotion": await analyse(state["text"])}

        async def n_retrieve(state: Skeleton) -> dict[str, Any]:
            return {"vector": await emb.aembed_query(state["text"])}

        async def n_progress(state: Skeleton) -> dict[str, Any]:
            return {}

        async def n_reply(state: Skeleton) -> dict[str, Any]:
            return {"reply": await reply(state["text"], state["emotion"])}

        async def n_remember(state: Skeleton) -> dict[str, Any]:
            await emb.aembed_query(f"User said: {state['text']}\nEliza replied: {state['reply']}")
            return {}

        g = StateGraph(Skeleton)
        for name, fn in (
            ("analyse", n_analyse),
            ("retrieve", n_retrieve),
            ("progress", n_progress),
            ("reply", n_reply),
            ("remember", n_remember),
        ):
            g.add_node(name, fn)
        for branch in ("analyse", "retrieve", "progress"):
            g.add_edge(START, branch)
        g.add_edge(["analyse", "retrieve", "progress"], "reply")
        g.add_edge("reply", "remember")
        g.add_edge("remember", END)
        graph = g.compile()

        async def run_graph(i: int) -> tuple[str, dict[str, Any]]:
            text = self.next_message(i)
            out = await graph.ainvoke({"text": text})
            return text, {"reply": out["reply"]}

        async def run_gather(i: int) -> tuple[str, dict[str, Any]]:
            text = self.next_message(i)

            async def progress() -> None:
                return None

            emotion, _vector, _ = await asyncio.gather(analyse(text), emb.aembed_query(text), progress())
            out = await reply(text, emotion)
            await emb.aembed_query(f"User said: {text}\nEliza replied: {out}")
            return text, {"reply": out}

        return [Variant("skeleton_graph", run_graph), Variant("asyncio_gather", run_gather)]

    # --- the checkpointer lock under concurrent turns -----------------------------------------

    async def concurrency(
        self, savers: dict[str, Any], concurrency: int, rounds: int, seconds: float
    ) -> dict[str, dict[str, Any]]:
        """`concurrency` workers each running turns back to back (each on its own thread) for
        `seconds`, per saver, `rounds` times (interleaved): turns per second and latency."""
        engines = {
            name: Turns(self.svc, build_chat(self.svc.settings).compile(checkpointer=s))
            for name, s in savers.items()
        }
        latencies: dict[str, list[float]] = {n: [] for n in savers}
        rates: dict[str, list[float]] = {n: [] for n in savers}
        users = self.users[:concurrency]

        async def worker(turns: Turns, user: uuid.UUID, until: float, lats: list[float]) -> int:
            done = 0
            while time.perf_counter() < until:
                t0 = time.perf_counter()
                await turns.run(user, None, self.next_message(done))
                lats.append((time.perf_counter() - t0) * 1000)
                done += 1
            return done

        cpu: dict[str, list[float]] = {n: [] for n in savers}
        pg_cpu: dict[str, list[float]] = {n: [] for n in savers}
        async with contextlib.AsyncExitStack() as stack:
            for turns in engines.values():
                await stack.enter_async_context(turns)
            for r in range(rounds + 1):  # round 0 warms up
                for name, turns in engines.items():
                    lats: list[float] = []
                    pg0, c0, t0 = process_tree_cpu_s(self.pg_pid), time.process_time(), time.perf_counter()
                    until = t0 + (seconds if r else seconds / 3)
                    done = await asyncio.gather(*(worker(turns, u, until, lats) for u in users))
                    wall, c1, pg1 = (
                        time.perf_counter() - t0,
                        time.process_time(),
                        process_tree_cpu_s(self.pg_pid),
                    )
                    if r > 0:
                        latencies[name] += lats
                        rates[name].append(sum(done) / wall)
                        cpu[name].append((c1 - c0) * 1000 / max(1, sum(done)))
                        if pg0 is not None and pg1 is not None:
                            pg_cpu[name].append((pg1 - pg0) * 1000 / max(1, sum(done)))
        return {
            n: {
                "concurrency": concurrency,
                "seconds": seconds,
                "turns_per_s": mean(rates[n]),
                "latency_ms": summary(latencies[n]),
                "cpu_ms_per_turn": mean(cpu[n]),
                "pg_cpu_ms_per_turn": mean(pg_cpu[n]) if pg_cpu[n] else None,
                "raw_turns_per_s": [round(x, 2) for x in rates[n]],
            }
            for n in savers
        }


async def checkpointer_ops(
    savers: dict[str, Any], tasks: int, seconds: float, rounds: int
) -> dict[str, dict[str, Any]]:
    """The saver alone: `tasks` coroutines each saving a checkpoint and reading it back in a
    loop (a chat turn's checkpoint traffic without the turn), per saver, `rounds` times
    (interleaved): checkpoint calls per second. This is the ceiling a saver puts on one process."""
    from langgraph.checkpoint.base import empty_checkpoint

    rates: dict[str, list[float]] = {n: [] for n in savers}
    payload = {"messages": ["x" * 200] * 6, "emotion": {"joy": 0.5}}

    async def loop(saver: Any, until: float) -> int:
        calls = 0
        config: dict[str, Any] = {"configurable": {"thread_id": f"ops-{uuid.uuid4()}", "checkpoint_ns": ""}}
        while time.perf_counter() < until:
            cp = empty_checkpoint()
            cp["channel_values"] = dict(payload)
            cp["channel_versions"] = {"messages": calls + 1, "emotion": calls + 1}
            saved = await saver.aput(config, cp, {"source": "loop", "step": calls, "parents": {}}, {})
            await saver.aput_writes(saved, [("emotion", {"joy": 0.1})], "task")
            await saver.aget_tuple(saved)
            calls += 3
        return calls

    for r in range(rounds + 1):
        for name, saver in savers.items():
            t0 = time.perf_counter()
            until = t0 + (seconds if r else seconds / 4)
            done = await asyncio.gather(*(loop(saver, until) for _ in range(tasks)))
            if r:
                rates[name].append(sum(done) / (time.perf_counter() - t0))
    return {
        n: {"tasks": tasks, "calls_per_s": mean(v), "raw": [round(x) for x in v]} for n, v in rates.items()
    }


async def run_inproc(
    svc: Services,
    profile: SimProfile,
    seeded: dict[str, uuid.UUID],
    pg_pid: int | None,
    *,
    iterations: int,
    framework_iterations: int,
    concurrency: int,
    rounds: int,
    seconds: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    h = Harness(svc, profile, seeded, pg_pid)
    settings = svc.settings
    pool = svc.db.pool
    prod = svc.checkpointer
    gc.collect()
    gc.freeze()  # as the API's lifespan does after start-up

    with count_round_trips((pool,)):
        k = max(1, len(h.users) // 9)

        def users(j: int) -> slice:
            return slice(j * k, (j + 1) * k)

        chat = Turns(svc, build_chat(settings).compile(checkpointer=prod))
        bare = Turns(svc, build_chat(settings).compile(), chat.engine)
        chained = Turns(svc, sequential_chat(settings).compile(checkpointer=prod), chat.engine)
        locked = Turns(
            svc,
            build_chat(settings).compile(checkpointer=AsyncPostgresSaver(pool, serde=serde())),
            chat.engine,
        )
        # A chat turn is a request's run: durability `exit` (engine/engine.py); `async` and `sync`
        # are what it would cost to checkpoint every step.
        variants = [
            h.chat_variant("fanout", chat, users(0)),
            h.chat_variant("no_checkpointer", bare, users(1)),
            h.chat_variant("durability_sync", chat, users(2), "sync"),
            h.chat_variant("durability_async", chat, users(3), "async"),
            h.chat_variant("sequential", chained, users(4)),
            h.chat_variant("no_pool_check", chat, users(5), pool_check=False),
            h.chat_variant("async_no_pool_check", chat, users(6), "async", pool_check=False),
            # The levers of the checkpointer: upstream's saver (its lock), and the production saver
            # with its writes and the finish committed without waiting for the flush.
            h.chat_variant("locked_saver", locked, users(7)),
            h.chat_variant("async_commit", chat, users(8), async_commit=True),
        ]
        log(f"in-process: {len(variants)} chat variants x {iterations} turns (interleaved)")
        async with chat, bare, chained, locked:
            await h.measure(variants, iterations)
        framework = h.framework_variants()
        log(f"in-process: graph vs asyncio.gather x {framework_iterations}")
        await h.measure(framework, framework_iterations, warmup=2)

    log(f"in-process: checkpointer lock, {concurrency} concurrent workers, {rounds} x {seconds} s per saver")
    lock = await h.concurrency(
        {
            "AsyncPostgresSaver": AsyncPostgresSaver(pool, serde=serde()),
            "PooledPostgresSaver": PooledPostgresSaver(pool, serde=serde()),
            "async_commit": PooledPostgresSaver(pool, serde=serde(), synchronous_commit=False),
        },
        concurrency,
        rounds,
        seconds,
    )
    log("in-process: checkpointer calls per second, 16 tasks, per saver")
    ops = await checkpointer_ops(
        {
            "AsyncPostgresSaver": AsyncPostgresSaver(pool, serde=serde()),
            "PooledPostgresSaver": PooledPostgresSaver(pool, serde=serde()),
        },
        16,
        seconds / 2,
        rounds,
    )
    out: dict[str, Any] = {v.name: v.report() for v in variants + framework}
    out["checkpointer_lock"] = lock
    out["checkpointer_ops"] = ops
    out["production_checkpointer"] = type(prod).__name__
    try:
        out["sync_nodes"] = sync_nodes()
    except Exception as err:  # the registry is others' code: report, do not fail the section
        out["sync_nodes_error"] = repr(err)
    return out


def sync_nodes() -> dict[str, Any]:
    """Nodes of the registered workflows that are plain `def` (LangGraph runs them in a thread)."""
    from graphs.registry import WORKFLOWS

    found, total = [], 0
    for name, w in WORKFLOWS.items():
        for node, spec in w.build().compile().nodes.items():
            if node.startswith("__"):
                continue
            total += 1
            bound = spec.bound
            if getattr(bound, "afunc", None) is None and getattr(bound, "func", None) is not None:
                found.append(f"{name}.{node}")
    return {"nodes": total, "sync": found}
