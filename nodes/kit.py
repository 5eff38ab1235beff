"""The pieces every workflow's nodes and wiring share, defined once:

- `observed`: every node's log line (graph, node, thread_id, ms, outcome) and `step` events;
- `emit`: a custom stream event, when someone is listening;
- `fallback`: an error handler that writes a branch's fallback value and goes on;
- `DB_RETRY`: the one retry policy of steps that touch the database;
- `gather`: "loaders in parallel, each with a timeout and a fallback, joined at one node";
- `bounded_map`: Pattern 5 inside one node (at most `limit` coroutines in flight, failures
  isolated).

The state reducers (usage, keyed merge) are in `state/reducers.py`: a state's type names its
reducer, and state imports nothing from here."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar, cast

from langgraph.errors import NodeError
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy

from core.errors import DelightError
from core.logging import get_logger
from nodes.context import RunContext, studio_context
from services.db import TRANSIENT_DB_ERRORS

log = get_logger("delight.graph")

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
U = TypeVar("U")

Update = dict[str, Any]  # a node's partial state update: only the keys it changed
# An `error_handler` (LangGraph injects `error` by name, which its node types do not describe).
ErrorHandler = Callable[..., Awaitable[Command[str]]]

# Transient database trouble is worth one more quick attempt. Model calls retry inside the gateway
# (services/llm/retry.py), so they are not listed: one retry layer per call. Every step that
# writes does so keyed (deterministic ids, ON CONFLICT), so a retried attempt writes nothing twice.
DB_RETRY = RetryPolicy(max_attempts=2, initial_interval=0.05, jitter=True, retry_on=TRANSIENT_DB_ERRORS)


def emit(runtime: Runtime[Any], event: dict[str, Any]) -> None:
    """A custom stream event (`stream_mode="custom"`); nothing when no one streams."""
    try:
        runtime.stream_writer(event)
    except Exception:  # no stream consumer (plain ainvoke): nothing to tell
        pass


async def context_of(runtime: Runtime[Any]) -> RunContext[Any]:
    """The run's context: as the host built it, or (LangGraph Studio, which passes only its
    form) the one `studio_context` builds for this run."""
    ctx = runtime.context
    return ctx if isinstance(ctx, RunContext) else await studio_context(ctx)


def _runtime_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Runtime[Any]:
    # LangGraph passes `runtime` by keyword (it reads the node's signature); tests call nodes
    # positionally, (state, runtime).
    return cast(Runtime[Any], kwargs["runtime"] if "runtime" in kwargs else args[1])


def observed(graph: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """One structured log line per node (graph, node, thread, ms, outcome) and `step` stream
    events as it starts (`running`) and finishes (`ok`; a fallback handler sends `degraded`),
    so a client can show progress as it happens. The node keeps its signature (LangGraph reads
    it to inject `runtime`), so `add_node` sees the node's own types."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        node = fn.__name__

        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            runtime = _runtime_of(args, kwargs)
            call_args: tuple[Any, ...] = args
            call_kwargs: dict[str, Any] = kwargs
            if not isinstance(runtime.context, RunContext):  # LangGraph Studio: this run's context
                runtime = runtime.override(context=await studio_context(runtime.context))
                if "runtime" in call_kwargs:
                    call_kwargs = {**call_kwargs, "runtime": runtime}
                else:
                    call_args = (call_args[0], runtime, *call_args[2:])
            ctx: RunContext[Any] = runtime.context
            t0 = ctx.started[node] = time.perf_counter()
            emit(runtime, {"type": "step", "node": node, "status": "running", "ms": None})
            outcome = "error"
            try:
                result = await cast(Callable[..., Awaitable[R]], fn)(*call_args, **call_kwargs)
                outcome = "ok"
                return result
            except BaseException as err:  # includes the cancellation a node timeout causes
                outcome = "error" if isinstance(err, Exception) else "cancelled"
                log.warning(
                    "node failed",
                    extra={
                        "graph": graph,
                        "node": node,
                        "thread_id": ctx.thread_id,
                        "ms": round((time.perf_counter() - t0) * 1000, 1),
                        "outcome": outcome,
                        "error": repr(err),
                    },
                )
                raise
            finally:
                if outcome == "ok":
                    ms = round((time.perf_counter() - t0) * 1000, 1)
                    log.info(
                        "node done",
                        extra={
                            "graph": graph,
                            "node": node,
                            "thread_id": ctx.thread_id,
                            "ms": ms,
                            "outcome": outcome,
                        },
                    )
                    emit(runtime, {"type": "step", "node": node, "status": "ok", "ms": ms})

        return run

    return wrap


def fallback(graph: str, update: Callable[[], Update], then: str) -> ErrorHandler:
    """An `error_handler` for a branch that may degrade: after its retries are exhausted (or
    its timeout fires) it writes the seed's fallback value, names itself in `degraded`, and
    goes on to `then` (a handler does not follow the failed node's edges by itself)."""

    async def handle(state: Any, error: NodeError, runtime: Runtime[Any]) -> Command[str]:
        ctx = await context_of(runtime)
        started = ctx.started.get(error.node)
        ms = round((time.perf_counter() - started) * 1000, 1) if started else None
        log.warning(
            "branch degraded",
            extra={
                "graph": graph,
                "node": error.node,
                "thread_id": ctx.thread_id,
                "ms": ms,
                "outcome": "degraded",
                "reason": repr(error.error),
            },
        )
        emit(runtime, {"type": "step", "node": error.node, "status": "degraded", "ms": ms})
        return Command(update={**update(), "degraded": [error.node]}, goto=then)

    return drawn_to(handle, then)


def drawn_to(handler: ErrorHandler, then: str) -> ErrorHandler:
    """Mark where a handler goes on to, for the drawings (graphs/draw.py draws the dotted
    fallback edge from it)."""
    setattr(handler, "fallback_to", then)  # noqa: B010  (a function attribute mypy cannot declare)
    return handler


@dataclass(frozen=True)
class Branch:
    """One parallel branch of `gather`: its node, the update it falls back to (None: a failure
    fails the run), and whether a transient database error is retried (`DB_RETRY`; model calls
    retry in the gateway instead)."""

    node: Callable[..., Awaitable[Update]]
    fallback: Callable[[], Update] | None = None
    retry: bool = True

    @property
    def name(self) -> str:
        return self.node.__name__


def gather(
    g: StateGraph[Any, Any, Any, Any],
    graph: str,
    branches: Sequence[Branch],
    *,
    join: Callable[..., Awaitable[Update]],
    timeout: float | None,
    after: str | None = START,
    join_timeout: float | None = None,
    join_retry: bool = False,
) -> tuple[str, ...]:
    """Loaders in parallel, each with its timeout, a quick retry on database errors, and an error
    handler writing its fallback, joined at the node `join` (added here, after them: LangGraph
    joins only at a node it has). `after`: the node they start from (None: a router sends the
    run to them). Returns the branches' names, in order."""
    join_name = join.__name__
    for b in branches:
        g.add_node(
            b.node,
            timeout=timeout,
            retry_policy=DB_RETRY if b.retry else None,
            error_handler=fallback(graph, b.fallback, then=join_name) if b.fallback else None,
        )
        if after is not None:
            g.add_edge(after, b.name)
    g.add_node(join, timeout=join_timeout, retry_policy=DB_RETRY if join_retry else None)
    names = tuple(b.name for b in branches)
    g.add_edge(list(names), join_name)
    return names


@dataclass(frozen=True)
class Outcome(Generic[T, U]):
    """One item's result of `bounded_map`: its value, or why it failed."""

    item: T
    result: U | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def bounded_map(items: Sequence[T], fn: Callable[[T], Awaitable[U]], limit: int) -> list[Outcome[T, U]]:
    """Pattern 5 inside a node: one coroutine per item with at most `limit` in flight; a failing
    item is reported with its reason and never stops the others."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> Outcome[T, U]:
        async with gate:
            try:
                return Outcome(item, await fn(item))
            except Exception as err:  # isolated: reported, not raised
                reason = err.message if isinstance(err, DelightError) else f"{type(err).__name__}: {err}"
                return Outcome(item, error=reason)

    return list(await asyncio.gather(*(one(i) for i in items)))
