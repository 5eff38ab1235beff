"""The run engine: every graph execution of the service is a run (services/runs.py), submitted here
by an entry point (HTTP route, ARQ job, the in-process scheduler, a node starting background work)
and executed by whichever process holds its lease.

Life of a run (README, "Runs"): `submit` admits it and inserts its row, `running` and owned by
this process when its thread is idle, else `pending`. A pending run holds nothing: it starts when
the thread's previous run finishes (that process takes it over in the same statement) or when a
process with room claims it (woken by NOTIFY, or its sweep every few seconds). The owner streams
the graph into the run's event log, renews its lease, and finishes the row: `success`, `error`,
`timeout` or `interrupted`. Any process can follow or wait for any run: the owner forwards events
to processes that asked (engine/bus.py). A run whose process died loses its lease; another process
settles it (a user's turn fails cleanly, a background run resumes from its checkpoint)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import openai
import orjson
import psycopg
from langgraph.errors import GraphRecursionError, NodeTimeoutError
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from psycopg_pool import PoolTimeout

from core.errors import Busy, DelightError, Invalid, NotFound, Overloaded, Unavailable
from core.logging import get_logger
from engine.bus import Bus
from engine.events import ERROR, METADATA, Event, RunLog, dump_lines, jsonable, load_lines
from engine.wire import EVENTS, Formatter
from graphs.registry import WORKFLOWS, Settlement, Workflow
from nodes.context import make_context
from services.container import Services
from services.llm.gateway import free_path
from services.llm.retry import is_transient
from services.runs import FINAL, Admission, Budget, RunRecord
from services.threads import ThreadStore

log = get_logger("delight.engine")

RECURSION_LIMIT = 50
KEEP_ENDED_S = 60.0  # an ended run's log stays in memory this long for late readers
SWEEP_S = 2.0  # pending runs are looked for at least this often, NOTIFY or not
FORWARD_BATCH_S = 0.01  # events for other processes are sent in batches this far apart


@dataclass(frozen=True)
class RunRequest:
    """A run to start. `user` None is the service's own (maintenance); `admit` False skips the
    user limits (the service's jobs and background runs queue instead of being refused)."""

    workflow: str
    input: Any = None
    user: uuid.UUID | None = None
    timezone: str = "UTC"
    thread_id: str | None = None  # None: a new thread
    create_thread: bool = True  # an unknown thread_id is created (else NotFound)
    run_id: uuid.UUID | None = None  # a fixed id makes the submit idempotent (jobs)
    strategy: str = "enqueue"
    stream_mode: tuple[str, ...] = ("custom",)
    subgraphs: bool = False
    durability: str | None = None  # None: "exit" for a request, "async" for a background run
    checkpoint_id: str | None = None
    command: dict[str, Any] | None = None
    interrupt_before: list[str] | str | None = None
    interrupt_after: list[str] | str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    thread_metadata: dict[str, Any] = field(default_factory=dict)
    background: bool = False  # runs on a worker (on the API itself when there is none)
    resumable: bool = True  # keep the events for replay after the run has ended
    admit: bool = True
    now: datetime | None = None  # the run's clock; default: its creation
    timeout_s: float | None = None  # default RUN_TIMEOUT_S; past it the run ends `timeout`
    recursion_limit: int | None = None  # LangGraph's superstep limit; default RECURSION_LIMIT
    temporary: bool = False  # a stateless run: its thread (and checkpoints) go when it ends


@dataclass
class Execution:
    record: RunRecord
    log: RunLog
    task: asyncio.Task[None] | None = None
    stop: str | None = None  # interrupt | rollback | lost | shutdown
    finishing: bool = False  # past the graph: recording the end is not interrupted any more
    started: float = field(default_factory=time.monotonic)
    watchers: dict[str, int] = field(default_factory=dict)  # process -> last seq sent to it


def describe(err: BaseException) -> tuple[str, str]:
    """(error type, message safe to show) of a failed run."""
    if isinstance(err, DelightError):
        return type(err).__name__, err.message
    if isinstance(err, psycopg.OperationalError | PoolTimeout):
        return "Unavailable", "database unavailable, try again shortly"
    if isinstance(err, openai.OpenAIError) and is_transient(err):
        return "Unavailable", "the model is unavailable just now, try again shortly"
    if isinstance(err, NodeTimeoutError | TimeoutError):
        return "Unavailable", "a step took too long, try again shortly"
    if isinstance(err, GraphRecursionError):
        return "GraphRecursionError", "the run took too many steps"
    return "InternalError", "the run failed"


class Engine:
    def __init__(
        self,
        services: Services,
        graphs: dict[str, CompiledStateGraph],
        *,
        queues: tuple[str, ...],
        max_running: int | None = None,
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.graphs = graphs
        self.store = services.runs
        self.queues = queues
        self.max_running = max_running or self.settings.run_max_running
        self.lease_s = self.settings.run_lease_s
        self.proc = uuid.uuid4().hex[:16]
        self.running: dict[uuid.UUID, Execution] = {}
        self._submitting = 0  # submits awaiting their insert (each may start a run here)
        self.logs: dict[uuid.UUID, RunLog] = {}  # local runs and mirrors of others'
        self.ended_at: dict[uuid.UUID, float] = {}
        self.accepting = True
        self.bus = Bus(services.db.url, self.proc, self.store, self._on_message, self._on_reconnect)
        self._wake = asyncio.Event()
        self._dirty: set[uuid.UUID] = set()
        self._forward = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.admission = Admission(
            self.settings.run_max_pending_per_thread,
            self.settings.run_max_pending_per_user,
            self.settings.run_rate_per_minute,
        )

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start()
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="engine-claim"),
            asyncio.create_task(self._lease_loop(), name="engine-lease"),
            asyncio.create_task(self._forward_loop(), name="engine-forward"),
        ]
        self._wake.set()
        log.info("engine ready", extra={"proc": self.proc, "queues": self.queues, "max": self.max_running})

    async def close(self, grace_s: float = 10.0) -> None:
        """Stop taking runs, let running ones finish for `grace_s`, then hand them back: a
        background run to the queue (another process resumes it), a request's run as failed."""
        self.accepting = False
        for loop in self._loops[:1]:
            loop.cancel()
        tasks = [ex.task for ex in self.running.values() if ex.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        for ex in list(self.running.values()):
            ex.stop = "shutdown"
            if ex.task is not None:
                ex.task.cancel()
        tasks = [ex.task for ex in self.running.values() if ex.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)
        await self.bus.close()

    # --- submitting ----------------------------------------------------------------------------

    async def submit(self, req: RunRequest) -> RunRecord:
        """Admit and record a run; it starts here at once when its thread is idle and this process
        has room. Raises NotFound (thread not the user's), Busy (`reject` on a busy thread),
        Overloaded (a limit: 429 with Retry-After)."""
        wf = self._workflow(req.workflow)
        # Runs being submitted count too: a burst of submits all awaiting their insert at once
        # would otherwise each see room and all start here.
        if req.admit and len(self.running) + self._submitting >= self.max_running:
            raise Overloaded("this server is at capacity, try again in a moment", retry_after=1)
        try:  # an unknown stream mode is refused before anything is written
            Formatter(req.stream_mode)
        except ValueError as err:
            raise Invalid(str(err)) from None
        run_id = req.run_id or uuid.uuid4()
        thread_id = req.thread_id or str(uuid.uuid4())
        queue = "worker" if req.background else "api"
        kwargs = {
            "stream_mode": list(req.stream_mode),
            "subgraphs": req.subgraphs,
            "durability": req.durability or ("async" if req.background else "exit"),
            "resumable": req.resumable,
            **{
                k: v
                for k, v in (
                    ("checkpoint_id", req.checkpoint_id),
                    ("command", req.command),
                    ("interrupt_before", req.interrupt_before),
                    ("interrupt_after", req.interrupt_after),
                    ("timeout_s", req.timeout_s),
                    ("recursion_limit", req.recursion_limit),
                    ("temporary", req.temporary or None),
                )
                if v is not None
            },
        }
        context = {"timezone": req.timezone, "now": req.now.isoformat() if req.now else None}
        value = wf.normalize_input(req.input) if wf.normalize_input else req.input
        own = (
            self.accepting
            and queue in self.queues
            and len(self.running) + self._submitting < self.max_running
        )
        self._submitting += 1
        try:
            res = await self._insert(req, run_id, thread_id, queue, value, kwargs, context, own)
        finally:
            self._submitting -= 1
        # From here to `_start` nothing awaits: the run joins `running` as its reservation ends.
        outcome = res["outcome"]
        if outcome == "not_found":
            raise NotFound("thread not found")
        if outcome == "busy":
            raise Busy("the thread is already running a run (multitask_strategy=reject)")
        if outcome in ("thread_full", "user_full", "rate_limited"):
            raise Overloaded(
                {
                    "thread_full": "too many messages are queued on this thread",
                    "user_full": "too many runs are queued for this user",
                    "rate_limited": "too many runs started in the last minute",
                }[outcome],
                retry_after=int(res["retry_after"]),
            )
        record = RunRecord.from_row(res["run"])
        if outcome == "created" and record.status == "running" and record.owner == self.proc:
            self._start(record)
        log.info(
            "run submitted",
            extra={
                "run_id": str(record.id),
                "workflow": record.workflow,
                "thread_id": record.thread_id,
                "status": record.status,
                "outcome": outcome,
            },
        )
        return record

    async def _insert(
        self,
        req: RunRequest,
        run_id: uuid.UUID,
        thread_id: str,
        queue: str,
        value: Any,
        kwargs: dict[str, Any],
        context: dict[str, Any],
        own: bool,
    ) -> dict[str, Any]:
        for attempt in range(2):
            try:
                return await self.store.submit(
                    run_id=run_id,
                    thread_id=thread_id,
                    user_id=req.user,
                    workflow=req.workflow,
                    queue=queue,
                    input=value,
                    kwargs=kwargs,
                    context=context,
                    metadata=req.metadata,
                    thread_metadata=req.thread_metadata,
                    strategy=req.strategy,
                    create_thread=req.create_thread,
                    owner=self.proc if own else None,
                    lease_s=self.lease_s,
                    admission=self.admission if req.admit else None,
                    budget=self._budget(req),
                )
            except psycopg.errors.UniqueViolation:
                # A claim started another run of this thread between our check and insert.
                if attempt:
                    raise
                own = False
        raise AssertionError("unreachable")

    def _budget(self, req: RunRequest) -> Budget | None:
        """The user's daily model budget, counted from their local midnight."""
        usd = self.settings.llm_daily_budget_usd
        if not usd or req.user is None:
            return None
        local = (req.now or datetime.now(UTC)).astimezone(ZoneInfo(req.timezone))
        return Budget(usd, local.replace(hour=0, minute=0, second=0, microsecond=0))

    async def retry(self, run_id: uuid.UUID) -> bool:
        """Queue a run that ended in error, timeout or interrupted again (its next attempt resumes
        from its last finished step); False if it was not in such a state."""
        if not await self.store.retry(run_id):
            return False
        log_ = self.logs.get(run_id)
        if log_ is not None and log_.done:  # the last attempt's events: a new attempt starts afresh
            del self.logs[run_id]
        # The process retrying it runs it when it can; else (no room, or its thread is busy) any
        # process serving its queue will.
        claimed = await self.store.claim(self.proc, self.queues, 1, self.lease_s, run_id=run_id)
        for record in claimed:
            self._start(record)
        if not claimed:
            await self.store.notify_all({"op": "wake"})
        return True

    async def run(self, req: RunRequest) -> RunRecord:
        """Submit and wait for the end (a run that already existed: its end)."""
        record = await self.submit(req)
        return record if record.done else await self.wait(record.id)

    # --- following -----------------------------------------------------------------------------

    async def wait(self, run_id: uuid.UUID) -> RunRecord:
        log_ = await self._log(run_id)
        return await self._watched(log_)

    async def events(self, run_id: uuid.UUID, after: int = 0) -> AsyncIterator[Event]:
        """The run's events with seq > `after` (a reconnecting client's Last-Event-ID), live, until
        the last one: `end` with the run's status."""
        log_ = await self._log(run_id)
        watchdog = asyncio.create_task(self._watched(log_))
        try:
            async for event in log_.follow(after):
                yield event
        finally:
            watchdog.cancel()

    async def cancel(
        self, run_id: uuid.UUID, action: str = "interrupt", *, wait: bool = False
    ) -> RunRecord | None:
        """Stop a run: `interrupt` keeps what it did and stops at its next step boundary,
        `rollback` stops it now and deletes it with what it wrote."""
        ex = self.running.get(run_id)
        if ex is not None:
            self._stop(ex, action)
        else:
            res = await self.store.cancel(run_id, action)
            if res["outcome"] == "gone":
                raise NotFound("run not found")
        if not wait:
            return None
        try:
            return await self.wait(run_id)
        except NotFound:  # rolled back before we looked: the run is gone
            return self._gone(run_id)

    async def _log(self, run_id: uuid.UUID) -> RunLog:
        """The run's log here: its own when it runs here, else a mirror the owner feeds."""
        log_ = self.logs.get(run_id)
        if log_ is not None:
            return log_
        log_ = self.logs[run_id] = RunLog(run_id)
        try:
            record = await self.store.watch(run_id, self.proc, 0)
        except BaseException:
            del self.logs[run_id]
            raise
        if record is None:
            del self.logs[run_id]
            raise NotFound("run not found")
        if record.done:
            self._ended(log_, record)
        return log_

    async def _watched(self, log_: RunLog) -> RunRecord:
        """Wait for a log's end; a mirror also checks the row every lease period, in case its
        owner died and the settling process's word was missed."""
        waiter = asyncio.ensure_future(log_.wait())
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=self.lease_s)
                if done:
                    return waiter.result()
                if log_.run_id in self.running:
                    continue
                with contextlib.suppress(psycopg.OperationalError, PoolTimeout, Unavailable):
                    record = await self.store.find(log_.run_id)
                    if record is None:
                        self._ended(log_, self._gone(log_.run_id))
                    elif record.done:
                        self._ended(log_, record)
        finally:
            waiter.cancel()

    def _gone(self, run_id: uuid.UUID) -> RunRecord:
        """What a reader of a deleted (rolled-back) run is told."""
        return RunRecord(
            id=run_id, thread_id="", workflow="", status="interrupted", error="the run was rolled back"
        )

    def _ended(self, log_: RunLog, record: RunRecord) -> None:
        if log_.done:
            return
        stored = load_lines(record.events) if record.events else []
        log_.finish(dataclasses.replace(record, events=None), stored)
        self.ended_at[log_.run_id] = time.monotonic()

    # --- executing -----------------------------------------------------------------------------

    def _workflow(self, name: str) -> Workflow:
        wf = WORKFLOWS.get(name)
        if wf is None or name not in self.graphs:
            raise NotFound(f"unknown workflow {name!r}")
        return wf

    def _start(self, record: RunRecord) -> None:
        log_ = self.logs.get(record.id)
        if log_ is None or log_.done:
            log_ = self.logs[record.id] = RunLog(record.id)
        ex = Execution(record, log_)
        ex.watchers = {w: 0 for w in record.watchers if w != self.proc}
        self.running[record.id] = ex
        ex.task = asyncio.create_task(self._execute(ex), name=f"run-{record.id}")

    def _emit(self, ex: Execution, name: str, data: Any) -> None:
        ex.log.emit(name, data)
        if ex.watchers:
            self._dirty.add(ex.record.id)
            self._forward.set()

    def _stop(self, ex: Execution, action: str) -> None:
        if ex.stop is not None or ex.finishing:
            return
        ex.stop = action
        if action != "interrupt" and ex.task is not None:
            ex.task.cancel()  # rollback (and lost, shutdown): now, not at the next step

    async def _execute(self, ex: Execution) -> None:
        run = ex.record
        wf = WORKFLOWS[run.workflow]
        t0 = time.perf_counter()
        status, output, error, error_type, thread_status = "success", None, None, None, None
        self._emit(ex, METADATA, {"run_id": str(run.id), "attempt": run.attempt})
        try:
            if run.attempt > self.settings.run_max_attempts:
                raise DelightError(f"the run was tried {run.attempt - 1} times and did not finish")
            async with asyncio.timeout(
                run.kwargs.get("timeout_s") or self.settings.run_timeout_s
            ) as deadline:
                try:
                    output, paused = await self._stream(ex, wf)
                except TimeoutError:
                    if deadline.expired():
                        raise
                    raise Unavailable("a step took too long, try again shortly") from None
            if ex.stop == "interrupt":
                status = "interrupted"
            elif paused:
                thread_status = "interrupted"
        except asyncio.CancelledError:
            if ex.stop == "lost":
                self._forget(run.id)
                return
            if ex.stop not in ("rollback", "shutdown"):
                raise
            status = "rollback" if ex.stop == "rollback" else "error"
            error, error_type = (
                (None, None) if ex.stop == "rollback" else ("the server stopped", "Unavailable")
            )
        except TimeoutError:
            status, error_type, error = "timeout", "Timeout", "the run took too long"
        except Exception as err:
            status = "error"
            error_type, error = describe(err)
            log.warning(
                "run failed",
                extra={
                    "run_id": str(run.id),
                    "workflow": run.workflow,
                    "error": repr(err),
                    "type": error_type,
                },
                exc_info=not isinstance(err, DelightError),
            )
        ex.finishing = True
        if ex.stop == "shutdown" and run.queue == "worker":
            await self._finish(ex, "pending")  # released: another worker resumes it
            return
        if status != "success" and wf.settle is not None:
            try:
                status, settled_output = await wf.settle(
                    self._settlement(run, "crashed" if ex.stop == "shutdown" else status)
                )
                output = settled_output if settled_output is not None else output
            except Exception:
                log.exception("run settle failed", extra={"run_id": str(run.id)})
                self._forget(run.id)  # its lease lapses and a reaper settles it again
                return
        elif status == "rollback":
            await self.store.delete_checkpoints(run.thread_id, run.id)
        if error is not None and status not in ("success", "rollback"):
            self._emit(ex, ERROR, {"error": error_type, "message": error})
        await self._finish(
            ex, status, output=output, error=error, error_type=error_type, thread_status=thread_status
        )
        log.info(
            "run done",
            extra={
                "run_id": str(run.id),
                "workflow": run.workflow,
                "thread_id": run.thread_id,
                "status": status,
                "ms": round((time.perf_counter() - t0) * 1000, 1),
            },
        )

    def _settlement(self, run: RunRecord, outcome: str) -> Settlement:
        async def forget() -> int:
            return await self.store.delete_checkpoints(run.thread_id, run.id)

        return Settlement(run, outcome, self.services, self.graphs[run.workflow], forget)

    async def _stream(self, ex: Execution, wf: Workflow) -> tuple[Any, bool]:
        """Run the graph, streaming into the log; (the output values, paused at an interrupt)."""
        run = ex.record
        kw = run.kwargs
        graph = self.graphs[run.workflow]
        fmt = Formatter(kw.get("stream_mode") or ())
        configurable: dict[str, Any] = {"thread_id": run.thread_id}
        if kw.get("checkpoint_id"):
            configurable["checkpoint_id"] = kw["checkpoint_id"]
        config: dict[str, Any] = {
            "configurable": configurable,
            # Checkpoint metadata: which run wrote it (rollback deletes by it), and who.
            "metadata": {
                "run_id": str(run.id),
                "graph_id": run.workflow,
                "user_id": str(run.user_id) if run.user_id else None,
                "run_attempt": run.attempt,
            },
            "run_id": run.id,
            "recursion_limit": kw.get("recursion_limit") or RECURSION_LIMIT,
        }
        now = run.context.get("now")
        ctx = make_context(
            run.user_id,
            thread_id=run.thread_id,
            timezone=run.context.get("timezone") or "UTC",
            now=datetime.fromisoformat(now) if now else (run.created_at or datetime.now(UTC)),
            services=self.services,
        )
        inputs: Any
        if kw.get("command"):
            inputs = Command(**kw["command"])
        else:
            resumed = await self._resume_point(graph, run)
            if resumed == "done":  # it had finished before its process stopped: nothing to redo
                snap = await graph.aget_state({"configurable": {"thread_id": run.thread_id}})
                return jsonable(self._output(graph, snap.values)), False
            inputs = (
                None
                if resumed == "resume"
                else (wf.prepare_input(run.input) if wf.prepare_input else run.input)
            )
        subgraphs = bool(kw.get("subgraphs"))
        values: Any = None
        paused = False
        options: dict[str, Any] = {
            "context": ctx,
            "stream_mode": [*(fmt.langgraph_modes() | {"values", "updates"})],
            "subgraphs": subgraphs,
            "interrupt_before": kw.get("interrupt_before"),
            "interrupt_after": kw.get("interrupt_after"),
            "output_keys": graph.output_channels,
        }
        if graph.checkpointer:  # durability means nothing to a graph without one
            options["durability"] = kw.get("durability") or "exit"
        # `options` is built per run (a **dict): mypy cannot pick an overload for it.
        stream: Any = (
            _chunks_and_events(graph.astream_events(inputs, config, version="v2", **options), str(run.id))  # type: ignore[call-overload]
            if fmt.events
            else graph.astream(inputs, config, **options)  # type: ignore[call-overload]
        )
        # Past the user's daily budget every model call of this run takes the free path (the
        # run's own task: the graph's tasks inherit the flag, no other run sees it).
        free_path.set(bool(run.context.get("over_budget")))
        async with contextlib.aclosing(stream):
            async for item in stream:
                if item[0] is None:  # a callback event (the `events` mode)
                    self._emit(ex, EVENTS, item[1])
                    continue
                ns, mode, chunk = item if subgraphs else ((), *item)
                for name, data in fmt.feed(ns, mode, chunk):
                    self._emit(ex, name, data)
                if ns:
                    continue
                if mode == "values":
                    values = chunk
                    if ex.stop == "interrupt":
                        break  # a step boundary: what finished is checkpointed, the rest is not run
                elif mode == "updates" and isinstance(chunk, dict) and "__interrupt__" in chunk:
                    paused = True
        return jsonable(values), paused

    @staticmethod
    def _output(graph: CompiledStateGraph, values: dict[str, Any]) -> dict[str, Any]:
        keys = graph.output_channels
        wanted = [keys] if isinstance(keys, str) else keys
        return {k: v for k, v in values.items() if k in wanted}

    async def _resume_point(self, graph: CompiledStateGraph, run: RunRecord) -> str:
        """For a run tried again: `resume` where its last checkpoint stopped, `done` if it had
        finished, `start` if it left nothing."""
        if run.attempt <= 1:
            return "start"
        snap = await graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        if not snap.metadata or snap.metadata.get("run_id") != str(run.id):
            return "start"
        return "resume" if snap.next else "done"

    async def _finish(self, ex: Execution, status: str, **fields: Any) -> None:
        """Record the end (retrying through a short database outage), wake local readers, and
        start the thread's next run here if this process takes it."""
        run = ex.record
        events = dump_lines(ex.log.events) if run.kwargs.get("resumable", True) else None
        output = fields.get("output")
        delay = 0.2
        deadline = time.monotonic() + self.lease_s
        while True:
            try:
                await self._flush(run.id)
                res = await self.store.finish(
                    run.id,
                    owner=self.proc,
                    status=status,
                    output=output,
                    error=fields.get("error"),
                    error_type=fields.get("error_type"),
                    events=events,
                    thread_status=fields.get("thread_status"),
                    claim_next=self.accepting and len(self.running) <= self.max_running,
                    queues=self.queues,
                    lease_s=self.lease_s,
                )
                break
            except (psycopg.OperationalError, PoolTimeout, Unavailable) as err:
                if time.monotonic() > deadline:
                    log.error("run finish failed", extra={"run_id": str(run.id), "error": repr(err)})
                    self._forget(run.id)  # its lease lapses; a reaper settles it when Postgres is back
                    self._ended(
                        ex.log, dataclasses.replace(run, status="error", error="database unavailable")
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        self.running.pop(run.id, None)
        final = "interrupted" if status in ("rollback", "pending") else status
        self._ended(
            ex.log,
            dataclasses.replace(
                run,
                status=final,
                output=output,
                error=fields.get("error") or ("the run was rolled back" if status == "rollback" else None),
                error_type=fields.get("error_type"),
                ended_at=datetime.now(UTC),
            ),
        )
        if run.kwargs.get("temporary") and status != "pending" and res.get("outcome") == "done":
            await self._drop_thread(run.thread_id)
        if res.get("next") and self.accepting:
            self._start(RunRecord.from_row(res["next"]))

    async def _drop_thread(self, thread_id: str) -> None:
        """A stateless run's thread goes once the run has ended (its readers were told first):
        checkpoints, then the row with its runs."""
        try:
            await self.services.checkpointer.adelete_thread(thread_id)
            await ThreadStore(self.services.db).drop(thread_id)
        except Exception as err:
            log.warning("temporary thread not deleted", extra={"thread_id": thread_id, "error": repr(err)})

    def _forget(self, run_id: uuid.UUID) -> None:
        self.running.pop(run_id, None)
        self._dirty.discard(run_id)

    # --- other processes -----------------------------------------------------------------------

    async def _on_message(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "wake":
            self._wake.set()
            return
        run_id = uuid.UUID(message["run"])
        if op == "ev":
            log_ = self.logs.get(run_id)
            if log_ is not None and run_id not in self.running:
                for raw in message["evs"]:
                    log_.add(Event.parse(raw))
        elif op == "end":
            log_ = self.logs.get(run_id)
            if log_ is not None and not log_.done and run_id not in self.running:
                self._spawn(self._fetch_end(log_))
        elif op == "watch":
            ex = self.running.get(run_id)
            if ex is not None:
                after = int(message.get("after") or 0)
                proc = message["proc"]
                ex.watchers[proc] = min(ex.watchers.get(proc, after), after)
                self._dirty.add(run_id)
                self._forward.set()
        elif op == "cancel":
            ex = self.running.get(run_id)
            if ex is not None:
                self._stop(ex, message.get("action") or "interrupt")

    async def _fetch_end(self, log_: RunLog) -> None:
        record = await self.store.find(log_.run_id)
        self._ended(log_, record if record is not None else self._gone(log_.run_id))

    async def _on_reconnect(self, _: dict[str, Any]) -> None:
        """Messages sent while the bus was down are lost: ask again for every mirrored run."""
        for run_id, log_ in list(self.logs.items()):
            if run_id not in self.running and not log_.done:
                self._spawn(self._rewatch(log_))
        self._wake.set()

    async def _rewatch(self, log_: RunLog) -> None:
        record = await self.store.watch(log_.run_id, self.proc, log_.last_seq)
        if record is None:
            self._ended(log_, self._gone(log_.run_id))
        elif record.done:
            self._ended(log_, record)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward_loop(self) -> None:
        while True:
            await self._forward.wait()
            self._forward.clear()
            await asyncio.sleep(FORWARD_BATCH_S)  # a few tokens more per notification
            with contextlib.suppress(Exception):
                await self._flush()

    async def _flush(self, only: uuid.UUID | None = None) -> None:
        """Send watchers the events they do not have yet (each a NOTIFY of at most ~8 KB)."""
        ids = [only] if only is not None else list(self._dirty)
        messages: list[tuple[str, dict[str, Any]]] = []
        sent: list[tuple[Execution, str, int]] = []
        for run_id in ids:
            self._dirty.discard(run_id)
            ex = self.running.get(run_id)
            if ex is None:
                continue
            for proc, after in ex.watchers.items():
                pending = [e for e in ex.log.events if e.seq > after]
                for batch in _batches(pending):
                    messages.append(
                        (
                            proc,
                            {
                                "op": "ev",
                                "run": str(run_id),
                                "evs": [orjson.Fragment(e.line()) for e in batch],
                            },
                        )
                    )
                if pending:
                    sent.append((ex, proc, pending[-1].seq))
        if not messages:
            return
        try:
            await self.bus.send(messages)
        except Exception:
            for ex, _, _ in sent:  # try again with the next batch
                self._dirty.add(ex.record.id)
            raise
        for ex, proc, seq in sent:
            ex.watchers[proc] = max(ex.watchers.get(proc, 0), seq)

    # --- claiming, leases, crashed processes ---------------------------------------------------

    async def _claim_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=SWEEP_S)
            self._wake.clear()
            room = self.max_running - len(self.running)
            if room <= 0 or not self.accepting:
                continue
            try:
                for record in await self.store.claim(self.proc, self.queues, room, self.lease_s):
                    self._start(record)
            except psycopg.errors.UniqueViolation:
                self._wake.set()  # lost a race with a submit: look again
            except Exception as err:
                log.warning("claim failed", extra={"error": repr(err)})

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                issued = time.monotonic()
                held = await self.store.heartbeat(self.proc, self.lease_s)
                for run_id, ex in list(self.running.items()):
                    if run_id not in held and ex.started < issued - 1:
                        log.warning("run lease lost", extra={"run_id": str(run_id)})
                        self._stop(ex, "lost")
                    elif reason := held.get(run_id):
                        self._stop(ex, reason)  # a cancel whose notification was missed
                for record in await self.store.take_expired(self.proc, self.lease_s):
                    self._spawn(self._settle_expired(record))
            except Exception as err:
                log.warning("lease renewal failed", extra={"error": repr(err)})
            now = time.monotonic()
            for run_id, at in list(self.ended_at.items()):
                log_ = self.logs.get(run_id)
                if now - at > KEEP_ENDED_S and (log_ is None or log_.followers == 0):
                    self.logs.pop(run_id, None)
                    del self.ended_at[run_id]

    async def _settle_expired(self, run: RunRecord) -> None:
        """A run whose process stopped: a background run goes back to the queue to resume from
        its checkpoint; a request's run is settled by its workflow (or failed)."""
        log.warning(
            "run orphaned", extra={"run_id": str(run.id), "workflow": run.workflow, "owner": run.owner}
        )
        ex = Execution(run, self.logs.get(run.id) or RunLog(run.id), finishing=True)
        self.running[run.id] = ex
        try:
            if run.queue == "worker" and run.attempt < self.settings.run_max_attempts:
                await self._finish(ex, "pending")
                await self.store.notify_all({"op": "wake"})
                return
            wf = WORKFLOWS[run.workflow]
            status, output = "error", None
            if wf.settle is not None:
                status, output = await wf.settle(self._settlement(run, "crashed"))
            await self._finish(
                ex,
                status,
                output=output,
                error=None if status == "success" else "the server running this run stopped",
                error_type=None if status == "success" else "Unavailable",
            )
        except Exception:
            log.exception("settling an orphaned run failed", extra={"run_id": str(run.id)})
            self._forget(run.id)


async def _chunks_and_events(events: AsyncIterator[dict[str, Any]], root: str) -> AsyncIterator[Any]:
    """`astream_events` as `astream` items, plus `(None, event)` for every other event: the run's
    own stream chunks are the root's `on_chain_stream` events."""
    # `astream_events` is an async generator (it has aclose), annotated as an AsyncIterator.
    async with contextlib.aclosing(events):  # type: ignore[type-var]
        async for event in events:
            if event["event"] == "on_chain_stream" and event["run_id"] == root:
                yield event["data"]["chunk"]
            elif "langsmith:hidden" not in (event.get("tags") or ()):
                yield None, event


def _batches(events: list[Event], limit: int = 6000) -> list[list[Event]]:
    out: list[list[Event]] = []
    size = 0
    for event in events:
        n = len(event.line())
        if not out or size + n > limit:
            out.append([])
            size = 0
        out[-1].append(event)
        size += n
    return out


def is_final(status: str) -> bool:
    return status in FINAL
