"""What every node receives besides state: the run's user and thread, the clock, and the
process-wide services (through LangGraph's `context_schema` / `Runtime[Context]`)."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from langgraph.config import get_config
from langgraph.errors import NodeError
from langgraph.runtime import Runtime
from langgraph.types import Command
from pydantic import Field, InstanceOf
from pydantic.json_schema import SkipJsonSchema

from core.logging import get_logger
from services.container import Services, shared_services

log = get_logger("delight.graph")


# Fields a host (the API, the worker) sets from the run itself: the user from the credentials,
# the thread from the run, the timezone from the user's profile, the clock once per run. Only
# Studio under `langgraph dev`, which has no users, takes them from its context form.
HOST_SET = ("user_id", "thread_id", "timezone", "now")


# Its JSON schema (`/assistants/{id}/schemas`) is what a client may pass under `langgraph dev`:
# the process's services and the per-run bookkeeping are skipped (pydantic cannot describe the
# services, and a client must never set them).
@dataclass
class Context:
    """What a run knows besides its state: who it runs for, their timezone, and its clock."""

    user_id: Annotated[
        str | None, Field(description="users.id to run as (langgraph dev; default: a 'studio' user)")
    ] = None
    thread_id: Annotated[str | None, SkipJsonSchema()] = None  # None in Studio: from the config
    timezone: Annotated[str, Field(description="IANA timezone of the user's local day")] = "UTC"
    now: Annotated[
        datetime | None, Field(description="The run's clock, ISO 8601 (default: when it starts)")
    ] = None
    services: Annotated[InstanceOf[Services] | None, SkipJsonSchema()] = None
    started: Annotated[dict[str, float], SkipJsonSchema()] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # LangGraph builds the context from a client's JSON as is (`Context(**context)`).
        if isinstance(self.now, str):
            now = datetime.fromisoformat(self.now)
            self.now = now if now.tzinfo else now.replace(tzinfo=UTC)

    async def svc(self) -> Services:
        if self.services is None:
            self.services = await shared_services()
        return self.services

    async def user(self) -> uuid.UUID:
        if self.user_id is None:
            self.user_id = str((await (await self.svc()).users.ensure("dev:studio")).id)
        return uuid.UUID(self.user_id)

    @property
    def clock(self) -> datetime:
        if self.now is None:
            self.now = datetime.now(UTC)
        return self.now


S = TypeVar("S")
NodeFn = Callable[[S, Runtime[Context]], Awaitable[dict[str, Any]]]


def _emit(runtime: Runtime[Context], event: dict[str, Any]) -> None:
    try:
        runtime.stream_writer(event)
    except Exception:  # no stream consumer (plain ainvoke): nothing to tell
        pass


def observed(graph: str) -> Callable[[NodeFn[S]], NodeFn[S]]:
    """One structured log line per node (graph, node, thread, ms, outcome) and `step` stream
    events as it starts (`running`) and finishes (`ok`; a fallback handler sends `degraded`),
    so a client can show progress as it happens."""

    def wrap(fn: NodeFn[S]) -> NodeFn[S]:
        node = fn.__name__

        @functools.wraps(fn)
        async def run(state: S, runtime: Runtime[Context]) -> dict[str, Any]:
            ctx = runtime.context
            if ctx.thread_id is None:
                ctx.thread_id = str(get_config().get("configurable", {}).get("thread_id", "studio"))
            t0 = ctx.started[node] = time.perf_counter()
            _emit(runtime, {"type": "step", "node": node, "status": "running", "ms": None})
            outcome = "error"
            try:
                update = await fn(state, runtime)
                outcome = "ok"
                return update
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
                    _emit(runtime, {"type": "step", "node": node, "status": "ok", "ms": ms})

        return run

    return wrap


def fallback(graph: str, update: Callable[[], dict[str, Any]], then: str) -> Callable[..., Any]:
    """An `error_handler` for a branch that may degrade: after its retries are exhausted (or
    its timeout fires) it writes the seed's fallback value, names itself in `degraded`, and
    goes on to `then` (a handler does not follow the failed node's edges by itself)."""

    async def handle(state: Any, error: NodeError, runtime: Runtime[Context]) -> Command[str]:
        ctx = runtime.context
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
        _emit(runtime, {"type": "step", "node": error.node, "status": "degraded", "ms": ms})
        return Command(update={**update(), "degraded": [error.node]}, goto=then)

    handle.fallback_to = then  # type: ignore[attr-defined]  # read by graphs/draw.py
    return handle
