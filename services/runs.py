"""Runs and their threads in Postgres: the SQL of the run engine (engine/). A run is a row with
LangGraph Platform's run semantics; the atomic steps (submit with admission, finish with hand-over
to the thread's next run, cancel, watch) are the plpgsql functions of migration 0006, so each is
one round trip taken under the thread's row lock."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from core.errors import NotFound
from domain.ids import stable_id
from services.db import Database

STATUSES = ("pending", "running", "success", "error", "timeout", "interrupted")
FINAL = frozenset({"success", "error", "timeout", "interrupted"})
STRATEGIES = ("reject", "enqueue", "interrupt", "rollback")

_COLUMNS = (
    "id, user_id, workflow, thread_id, status, input, kwargs, context, metadata, multitask_strategy, "
    "queue, attempt, owner, lease_until, cancel, watchers, output, error, error_type, created_at, "
    "started_at, ended_at, updated_at"
)


def thread_for(workflow: str, *key: object) -> str:
    """The one thread of a workflow for a key (a goal, a job's period): its runs take turns there
    and a re-run resumes there."""
    return str(stable_id("thread", workflow, *key))


def _ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


@dataclass(frozen=True)
class RunRecord:
    """One run as stored (rows from SQL and from the functions' jsonb read the same)."""

    id: uuid.UUID
    thread_id: str
    workflow: str
    status: str
    user_id: uuid.UUID | None = None
    input: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    multitask_strategy: str = "enqueue"
    queue: str = "api"
    attempt: int = 0
    owner: str | None = None
    cancel: str | None = None
    watchers: tuple[str, ...] = ()
    output: Any = None
    error: str | None = None
    error_type: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    updated_at: datetime | None = None
    events: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        user = row.get("user_id")
        return cls(
            id=row["id"] if isinstance(row["id"], uuid.UUID) else uuid.UUID(row["id"]),
            thread_id=row["thread_id"],
            workflow=row["workflow"],
            status=row["status"],
            user_id=None if user is None else (user if isinstance(user, uuid.UUID) else uuid.UUID(user)),
            input=row.get("input"),
            kwargs=row.get("kwargs") or {},
            context=row.get("context") or {},
            metadata=row.get("metadata") or {},
            multitask_strategy=row.get("multitask_strategy") or "enqueue",
            queue=row.get("queue") or "api",
            attempt=row.get("attempt") or 0,
            owner=row.get("owner"),
            cancel=row.get("cancel"),
            watchers=tuple(row.get("watchers") or ()),
            output=row.get("output"),
            error=row.get("error"),
            error_type=row.get("error_type"),
            created_at=_ts(row.get("created_at")),
            started_at=_ts(row.get("started_at")),
            ended_at=_ts(row.get("ended_at")),
            updated_at=_ts(row.get("updated_at")),
            events=row.get("events"),
        )

    @property
    def done(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True)
class Admission:
    """Limits a user's request must pass at submit (settings; see core/settings.py)."""

    max_pending_thread: int
    max_pending_user: int
    rate_per_minute: int


@dataclass(frozen=True)
class Budget:
    """A user's daily model budget: spend since `since` (their local midnight) at or past
    `usd` marks the run `over_budget` in its context."""

    usd: float
    since: datetime


class RunStore:
    def __init__(self, db: Database, *, async_commit: bool = False) -> None:
        self.db = db
        # The finish commits without waiting for its WAL flush (RUN_ASYNC_COMMIT): the setting
        # is local to the statement's own transaction.
        self.async_commit = async_commit

    # --- the atomic steps (migration 0006) ---------------------------------------------------

    async def submit(
        self,
        *,
        run_id: uuid.UUID,
        thread_id: str,
        user_id: uuid.UUID | None,
        workflow: str,
        queue: str,
        input: Any,
        kwargs: dict[str, Any],
        context: dict[str, Any],
        metadata: dict[str, Any],
        thread_metadata: dict[str, Any],
        strategy: str,
        create_thread: bool,
        owner: str | None,
        lease_s: float,
        admission: Admission | None,
        budget: Budget | None = None,
    ) -> dict[str, Any]:
        """Admit, apply the multitask strategy and insert: `outcome` is created (the run is
        `running` and owned by `owner` when its thread was idle, else `pending`), exists,
        not_found, busy, thread_full, user_full or rate_limited (with `retry_after`)."""
        row = await self.db.fetchrow(
            """SELECT delight_submit_run(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                                         %s, %s, %s, %s, %s) AS r""",
            (
                run_id,
                thread_id,
                user_id,
                workflow,
                queue,
                Jsonb(input),
                Jsonb(kwargs),
                Jsonb(context),
                Jsonb(metadata),
                Jsonb(thread_metadata),
                strategy,
                create_thread,
                owner,
                lease_s,
                admission is not None,
                admission.max_pending_thread if admission else 0,
                admission.max_pending_user if admission else 0,
                admission.rate_per_minute if admission else 0,
                budget.usd if budget else 0,
                budget.since if budget else None,
            ),
        )
        assert row is not None
        return row["r"]

    async def start_background(
        self,
        workflow: str,
        *,
        run_id: uuid.UUID,
        thread_id: str,
        user_id: uuid.UUID | None,
        input: Any,
        timezone: str = "UTC",
    ) -> RunRecord:
        """A run the service itself starts (e.g. goal creation starting its decomposition), queued
        for whichever process serves background runs. Idempotent on `run_id`."""
        res = await self.submit(
            run_id=run_id,
            thread_id=thread_id,
            user_id=user_id,
            workflow=workflow,
            queue="worker",
            input=input,
            kwargs={"stream_mode": ["custom"], "durability": "async", "resumable": True},
            context={"timezone": timezone, "now": None},
            metadata={},
            thread_metadata={},
            strategy="enqueue",
            create_thread=True,
            owner=None,
            lease_s=0,
            admission=None,
        )
        if res["outcome"] not in ("created", "exists"):
            raise NotFound("thread not found")
        return RunRecord.from_row(res["run"])

    async def finish(
        self,
        run_id: uuid.UUID,
        *,
        owner: str,
        status: str,
        output: Any = None,
        error: str | None = None,
        error_type: str | None = None,
        events: str | None = None,
        thread_status: str | None = None,
        claim_next: bool,
        queues: tuple[str, ...],
        lease_s: float,
    ) -> dict[str, Any]:
        """Record the outcome and, with `claim_next`, take the thread's next pending run for this
        process (returned as `next`). `outcome` lost: another process holds the run now."""
        row = await self.db.fetchrow(
            "SELECT delight_finish_run(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) AS r"
            + (", set_config('synchronous_commit', 'off', true)" if self.async_commit else ""),
            (
                run_id,
                owner,
                status,
                Jsonb(output) if output is not None else None,
                error,
                error_type,
                events,
                thread_status,
                claim_next,
                list(queues),
                lease_s,
            ),
        )
        assert row is not None
        return row["r"]

    async def cancel(self, run_id: uuid.UUID, action: str) -> dict[str, Any]:
        row = await self.db.fetchrow("SELECT delight_cancel_run(%s, %s) AS r", (run_id, action))
        assert row is not None
        return row["r"]

    async def watch(self, run_id: uuid.UUID, proc: str, after: int) -> RunRecord | None:
        row = await self.db.fetchrow("SELECT delight_watch_run(%s, %s, %s) AS r", (run_id, proc, after))
        return RunRecord.from_row(row["r"]) if row and row["r"] else None

    # --- the engine's housekeeping --------------------------------------------------------------

    async def claim(
        self, owner: str, queues: tuple[str, ...], limit: int, lease_s: float, run_id: uuid.UUID | None = None
    ) -> list[RunRecord]:
        """The oldest pending run of each idle thread (or just `run_id`), up to `limit`, now
        running here. A claim racing a submit on the same thread loses to the unique index; the
        caller retries later."""
        rows = await self.db.fetch(
            f"""WITH cand AS (
                    SELECT p.id FROM runs p
                    WHERE p.status = 'pending' AND p.queue = ANY(%s) AND p.created_at <= now()
                      AND (%s::uuid IS NULL OR p.id = %s)
                      AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.thread_id = p.thread_id
                                      AND x.status = 'running')
                      AND NOT EXISTS (SELECT 1 FROM runs y WHERE y.thread_id = p.thread_id
                                      AND y.status = 'pending'
                                      AND (y.created_at, y.id) < (p.created_at, p.id))
                    ORDER BY p.created_at LIMIT %s FOR UPDATE SKIP LOCKED)
                UPDATE runs r SET status = 'running', owner = %s, started_at = now(), updated_at = now(),
                       lease_until = now() + make_interval(secs => %s), attempt = r.attempt + 1
                FROM cand WHERE r.id = cand.id
                RETURNING {", ".join("r." + c.strip() for c in _COLUMNS.split(","))}""",
            (list(queues), run_id, run_id, limit, owner, lease_s),
        )
        return [RunRecord.from_row(r) for r in rows]

    async def heartbeat(self, owner: str, lease_s: float) -> dict[uuid.UUID, str | None]:
        """Extend the leases of this process's runs; returns each one's pending cancel action
        (a cancel whose notification was missed is still seen here)."""
        rows = await self.db.fetch(
            """UPDATE runs SET lease_until = now() + make_interval(secs => %s)
               WHERE owner = %s AND status = 'running' RETURNING id, cancel""",
            (lease_s, owner),
        )
        return {r["id"]: r["cancel"] for r in rows}

    async def take_expired(self, owner: str, lease_s: float, limit: int = 20) -> list[RunRecord]:
        """Runs whose process stopped heartbeating: this process takes their lease to settle them."""
        rows = await self.db.fetch(
            f"""UPDATE runs SET owner = %s, updated_at = now(),
                       lease_until = now() + make_interval(secs => %s)
                WHERE id IN (SELECT id FROM runs WHERE status = 'running' AND lease_until < now()
                             ORDER BY lease_until LIMIT %s FOR UPDATE SKIP LOCKED)
                RETURNING {_COLUMNS}""",
            (owner, lease_s, limit),
        )
        return [RunRecord.from_row(r) for r in rows]

    async def retry(self, run_id: uuid.UUID) -> bool:
        """A failed run of a job made pending again for its next try (its attempt carries on)."""
        n = await self.db.execute(
            """UPDATE runs SET status = 'pending', error = NULL, error_type = NULL, ended_at = NULL,
                      updated_at = now()
               WHERE id = %s AND status IN ('error', 'timeout', 'interrupted')""",
            (run_id,),
        )
        return bool(n)

    async def notify(self, messages: list[tuple[str, str]]) -> None:
        """NOTIFY (channel, payload) pairs in one round trip."""
        if not messages:
            return
        sql = "SELECT " + ", ".join("pg_notify(%s, %s)" for _ in messages)
        await self.db.execute(sql, [x for pair in messages for x in pair])

    async def notify_all(self, message: dict[str, Any]) -> None:
        await self.notify([("dl_all", json.dumps(message))])

    # --- reads -----------------------------------------------------------------------------------

    async def get(
        self, run_id: uuid.UUID, user_id: uuid.UUID | None = None, *, events: bool = False
    ) -> RunRecord:
        """A run; with `user_id`, only that user's (else NotFound: never tell which)."""
        cols = _COLUMNS + (", events" if events else "")
        if user_id is None:
            row = await self.db.fetchrow(f"SELECT {cols} FROM runs WHERE id = %s", (run_id,))
        else:
            row = await self.db.fetchrow(
                f"SELECT {cols} FROM runs WHERE id = %s AND user_id = %s", (run_id, user_id)
            )
        if row is None:
            raise NotFound("run not found")
        return RunRecord.from_row(row)

    async def find(self, run_id: uuid.UUID) -> RunRecord | None:
        row = await self.db.fetchrow(f"SELECT {_COLUMNS}, events FROM runs WHERE id = %s", (run_id,))
        return RunRecord.from_row(row) if row else None

    async def latest(self, thread_id: str) -> RunRecord | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM runs WHERE thread_id = %s ORDER BY created_at DESC, id DESC LIMIT 1",
            (thread_id,),
        )
        return RunRecord.from_row(row) if row else None

    async def for_thread(
        self, thread_id: str, *, limit: int = 10, offset: int = 0, status: str | None = None
    ) -> list[RunRecord]:
        rows = await self.db.fetch(
            f"""SELECT {_COLUMNS} FROM runs WHERE thread_id = %s AND (%s::text IS NULL OR status = %s)
                ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s""",
            (thread_id, status, status, limit, offset),
        )
        return [RunRecord.from_row(r) for r in rows]

    async def delete_checkpoints(self, thread_id: str, run_id: uuid.UUID) -> int:
        """Forget what a run wrote to its thread (rollback; a failed chat turn): its checkpoints,
        their pending writes, and the blobs no remaining checkpoint refers to."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                """DELETE FROM checkpoints WHERE thread_id = %s AND metadata->>'run_id' = %s
                   RETURNING checkpoint_ns, checkpoint_id""",
                (thread_id, str(run_id)),
            )
            gone = await cur.fetchall()
            if not gone:
                return 0
            await conn.execute(
                """DELETE FROM checkpoint_writes w USING unnest(%s::text[], %s::text[]) AS g(ns, id)
                   WHERE w.thread_id = %s AND w.checkpoint_ns = g.ns AND w.checkpoint_id = g.id""",
                ([g["checkpoint_ns"] for g in gone], [g["checkpoint_id"] for g in gone], thread_id),
            )
            await conn.execute(
                """DELETE FROM checkpoint_blobs b WHERE b.thread_id = %s AND NOT EXISTS (
                       SELECT 1 FROM checkpoints c WHERE c.thread_id = b.thread_id
                         AND c.checkpoint_ns = b.checkpoint_ns
                         AND c.checkpoint->'channel_versions'->>b.channel = b.version)""",
                (thread_id,),
            )
            return len(gone)
