"""Running one chat turn: ownership, the per-thread lock, the graph run, and the events it
streams. Shared by /chat, /chat/stream and the companion contract."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Overwrite

from core.logging import get_logger
from graphs.runs import invoke
from nodes.context import Context
from services.container import Services
from services.users import User
from state.schemas import TIERS, Emotion, Progress, Usage

log = get_logger("delight.api")
Event = dict[str, Any]


def user_context(user: User, svc: Services, thread_id: str) -> Context:
    """A run's context for a request: the caller, their timezone, one clock for every node."""
    return Context(
        user_id=str(user.id), thread_id=thread_id, timezone=user.timezone, now=datetime.now(UTC), services=svc
    )


async def open_thread(svc: Services, user: User, thread_id: uuid.UUID | None) -> str:
    """The caller's thread: an existing one they own (else NotFound), or a new one."""
    if thread_id is None:
        return await svc.threads.create(user.id)
    await svc.threads.require_owned(str(thread_id), user.id)
    return str(thread_id)


def turn_body(thread_id: str, out: dict[str, Any]) -> dict[str, Any]:
    emotion: Emotion = out.get("emotion") or Emotion()
    progress: Progress = out.get("progress") or Progress()
    usage: Usage = out.get("usage") or Usage()
    memories = out.get("memories") or {}
    return {
        "thread_id": thread_id,
        "reply": out.get("reply", ""),
        "emotion": {"dominant": emotion.dominant, "scores": emotion.scores},
        "memories": [
            {"id": h.id, "tier": h.tier, "content": h.content, "score": h.score}
            for tier in TIERS
            for h in memories.get(tier, [])
        ],
        "progress": progress.model_dump(),
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cost_usd": usage.cost_usd,
        },
        "degraded": list(out.get("degraded") or []),
    }


def turn_usage(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A turn's usage as Delight's client reads it on the companion stream's `complete`."""
    usage = body["usage"]
    return {
        "model": model,
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        "cost_usd": usage["cost_usd"],
    }


async def run_turn(
    graph: CompiledStateGraph,
    svc: Services,
    user: User,
    thread_id: str,
    message: str,
    *,
    run_id: str | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> dict[str, Any]:
    """Run the chat graph for one message, holding the thread's lock so turns never interleave.
    Emits `step` and `token` events through `on_event`; returns the response body."""
    run_id = run_id or str(uuid.uuid4())
    t0 = time.perf_counter()
    async with svc.db.thread_lock(thread_id):
        ctx = user_context(user, svc, thread_id)
        inputs = {
            "messages": [HumanMessage(message, id=str(uuid.uuid4()))],
            "usage": Overwrite(Usage()),
            "degraded": Overwrite([]),
        }
        out = await invoke(graph, inputs, ctx, config={"run_id": run_id}, on_event=on_event)
    body = turn_body(thread_id, out)
    log.info(
        "turn done",
        extra={
            "graph": "chat",
            "thread_id": thread_id,
            "run_id": run_id,
            "ms": round((time.perf_counter() - t0) * 1000, 1),
            "degraded": body["degraded"],
        },
    )
    return body


@dataclass
class TurnStream:
    """Events of one background turn, buffered so a late subscriber replays them all."""

    events: list[Event] = field(default_factory=list)
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    finished_at: float | None = None

    def push(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    def finish(self, event: Event) -> None:
        self.push(event)
        self.done = True
        self.finished_at = time.monotonic()

    async def follow(self) -> AsyncIterator[Event]:
        seen = 0
        while True:
            while seen < len(self.events):
                seen += 1
                yield self.events[seen - 1]
            if self.done:
                return
            self.changed.clear()
            if seen == len(self.events):
                await self.changed.wait()


class TurnBroker:
    """Background turns of the companion contract: POST starts the turn at once (work begins
    while the client opens its EventSource); the stream route replays and follows its events.
    Finished turns are kept for `keep_s` so a reconnecting EventSource still gets the end."""

    def __init__(self, keep_s: float = 300.0) -> None:
        self.keep_s = keep_s
        self.turns: dict[str, TurnStream] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, key: str, work: Callable[[Callable[[Event], None]], Any]) -> None:
        """Run `work(emit)` in the background; what it returns (e.g. `{"usage": ...}`) is added
        to the final `complete` event."""
        self._expire()
        stream = self.turns[key] = TurnStream()

        async def run() -> None:
            try:
                extra = await work(stream.push)
                stream.finish({"type": "complete", **(extra or {})})
            except Exception as err:
                log.exception("background turn failed", extra={"thread_id": key})
                stream.finish({"type": "error", "message": public_message(err)})

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def get(self, key: str) -> TurnStream | None:
        return self.turns.get(key)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self.turns.items() if s.finished_at and now - s.finished_at > self.keep_s]:
            del self.turns[key]

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def public_message(err: BaseException) -> str:
    from core.errors import DelightError

    if isinstance(err, DelightError):
        return err.message
    return "Eliza could not answer just now; please try again."
