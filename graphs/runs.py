"""Background graph runs: a `runs` row records each (pending → running → succeeded/failed); the
run's checkpoints live on the deterministic thread `run:<run_id>`, so a retried run resumes
instead of redoing finished steps. This in-process dispatcher runs them as asyncio tasks."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from core.errors import DelightError
from core.logging import get_logger
from nodes.context import Context
from services.container import Services

log = get_logger("delight.runs")
Event = dict[str, Any]


async def invoke(
    graph: CompiledStateGraph,
    inputs: dict[str, Any] | None,
    ctx: Context,
    *,
    config: dict[str, Any] | None = None,
    on_event: Callable[[Event], None] | None = None,
    durability: str | None = None,
) -> dict[str, Any]:
    """Run a graph to its end on `ctx.thread_id`, passing its custom stream events (`step`,
    `token`, workflow-specific ones) to `on_event`; returns the final (output-schema) values."""
    run_config: dict[str, Any] = {
        "recursion_limit": 50,
        **(config or {}),
        "configurable": {"thread_id": ctx.thread_id},
    }
    extra = {"durability": durability} if durability else {}
    out: dict[str, Any] = {}
    # Only the output schema's keys: working state stays inside the graph.
    async for mode, chunk in graph.astream(
        inputs,
        run_config,
        context=ctx,
        stream_mode=["custom", "values"],
        output_keys=graph.output_channels,
        **extra,
    ):
        if mode == "values":
            out = chunk
        elif on_event is not None:
            on_event(chunk)
    return out


async def resume_or_start(
    graph: CompiledStateGraph,
    payload: dict[str, Any],
    ctx: Context,
    *,
    run_config: dict[str, Any] | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> dict[str, Any]:
    """Run on the context's (deterministic) thread: a finished run returns its state, an
    interrupted one resumes at the step that did not finish, a new one starts."""
    snapshot = await graph.aget_state({"configurable": {"thread_id": ctx.thread_id}})
    if snapshot.values and not snapshot.next:
        keys = graph.output_channels
        wanted = [keys] if isinstance(keys, str) else keys
        return {k: v for k, v in snapshot.values.items() if k in wanted}
    inputs = None if snapshot.next else payload
    return await invoke(graph, inputs, ctx, config=run_config, on_event=on_event)


def run_thread(run_id: uuid.UUID) -> str:
    return f"run:{run_id}"


async def execute(
    graph: CompiledStateGraph,
    services: Services,
    *,
    workflow: str,
    user_id: str,
    payload: dict[str, Any],
    run_id: uuid.UUID,
    on_event: Callable[[Event], None] | None = None,
    timezone: str | None = None,
    run_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run `workflow` to the end, recording its status and result on the run row. A run that
    already succeeded returns its stored result; a failed or interrupted one resumes."""
    thread_id = run_thread(run_id)
    await services.runs.create(run_id, uuid.UUID(user_id), workflow, thread_id, payload)
    if timezone is None:  # "today" in a workflow means the user's day
        row = await services.db.fetchrow("SELECT timezone FROM users WHERE id = %s", (uuid.UUID(user_id),))
        timezone = row["timezone"] if row else "UTC"
    ctx = Context(
        user_id=user_id, thread_id=thread_id, timezone=timezone, now=datetime.now(UTC), services=services
    )
    await services.runs.mark(run_id, "running")
    t0 = time.perf_counter()
    try:
        out = await resume_or_start(graph, payload, ctx, run_config=run_config, on_event=on_event)
    except Exception as err:
        message = err.message if isinstance(err, DelightError) else f"{type(err).__name__}: {err}"
        await services.runs.mark(run_id, "failed", error=message)
        log.warning("run failed", extra={"workflow": workflow, "run_id": str(run_id), "error": message})
        raise
    await services.runs.mark(run_id, "succeeded", result=out)
    log.info(
        "run done",
        extra={
            "workflow": workflow,
            "run_id": str(run_id),
            "ms": round((time.perf_counter() - t0) * 1000, 1),
        },
    )
    return out


class InProcessDispatcher:
    """Starts runs as tasks of this process (the default without a job queue)."""

    def __init__(self, services: Services, graphs: dict[str, CompiledStateGraph]) -> None:
        self.services = services
        self.graphs = graphs
        self.tasks: set[asyncio.Task[Any]] = set()

    async def dispatch(
        self, workflow: str, *, user_id: str, payload: dict[str, Any], run_id: uuid.UUID
    ) -> None:
        await self.services.runs.create(run_id, uuid.UUID(user_id), workflow, run_thread(run_id), payload)

        async def run() -> None:
            try:
                await execute(
                    self.graphs[workflow],
                    self.services,
                    workflow=workflow,
                    user_id=user_id,
                    payload=payload,
                    run_id=run_id,
                )
            except Exception:  # recorded on the run row by `execute`
                pass

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for every started run (tests; graceful shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
