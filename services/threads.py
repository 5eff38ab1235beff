"""Threads as the Agent Server API sees them (api/agent/): a user's threads, their metadata and
status, searched and changed only by their owner. Every statement filters by the owner itself, so
another user's thread reads as missing. A thread's graph (`graph_id`) is set by its first run (or
at creation) and never changes: its checkpoints are that graph's state. Its status follows its
runs (migration 0006's functions set it)."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from services.db import Database

_COLUMNS = "id, user_id, graph_id, metadata, status, created_at, updated_at"
SORTABLE = {
    "thread_id": "id",
    "status": "status",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "state_updated_at": "updated_at",
}


def _filters(
    user_id: uuid.UUID,
    metadata: dict[str, Any] | None,
    graph_id: str | None,
    status: str | None,
    ids: list[str] | None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = ["user_id = %s"]
    params: list[Any] = [user_id]
    if metadata:
        clauses.append("metadata @> %s")
        params.append(Jsonb(metadata))
    if graph_id is not None:
        clauses.append("graph_id = %s")
        params.append(graph_id)
    if status is not None:
        clauses.append("status = %s")
        params.append(status)
    if ids is not None:
        clauses.append("id = ANY(%s)")
        params.append(ids)
    return " AND ".join(clauses), params


class ThreadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, thread_id: str, user_id: uuid.UUID, metadata: dict[str, Any], graph_id: str | None
    ) -> dict[str, Any] | None:
        """The new thread, or None when the id is taken (by this user or another)."""
        return await self.db.fetchrow(
            f"""INSERT INTO threads (id, user_id, graph_id, metadata) VALUES (%s, %s, %s, %s)
                ON CONFLICT (id) DO NOTHING RETURNING {_COLUMNS}""",
            (thread_id, user_id, graph_id, Jsonb(metadata)),
        )

    async def get(self, thread_id: str, user_id: uuid.UUID) -> dict[str, Any] | None:
        return await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM threads WHERE id = %s AND user_id = %s", (thread_id, user_id)
        )

    async def search(
        self,
        user_id: uuid.UUID,
        *,
        metadata: dict[str, Any] | None = None,
        graph_id: str | None = None,
        status: str | None = None,
        ids: list[str] | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str = "created_at",
        sort_order: str = "desc",
    ) -> list[dict[str, Any]]:
        where, params = _filters(user_id, metadata, graph_id, status, ids)
        order = f"{SORTABLE[sort_by]} {'ASC' if sort_order == 'asc' else 'DESC'}, id"
        return await self.db.fetch(
            f"SELECT {_COLUMNS} FROM threads WHERE {where} ORDER BY {order} LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )

    async def count(
        self,
        user_id: uuid.UUID,
        *,
        metadata: dict[str, Any] | None = None,
        graph_id: str | None = None,
        status: str | None = None,
    ) -> int:
        where, params = _filters(user_id, metadata, graph_id, status, None)
        row = await self.db.fetchrow(f"SELECT count(*) AS n FROM threads WHERE {where}", params)
        return int(row["n"]) if row else 0

    async def patch(
        self, thread_id: str, user_id: uuid.UUID, metadata: dict[str, Any], graph_id: str | None
    ) -> dict[str, Any] | None:
        """Merge `metadata` into the thread's; set its graph if it has none yet."""
        return await self.db.fetchrow(
            f"""UPDATE threads SET metadata = metadata || %s, graph_id = coalesce(graph_id, %s),
                       updated_at = now()
                WHERE id = %s AND user_id = %s RETURNING {_COLUMNS}""",
            (Jsonb(metadata), graph_id, thread_id, user_id),
        )

    async def settle_status(self, thread_id: str, user_id: uuid.UUID, status: str) -> None:
        """After a state update: the thread's status unless a run holds it (then the run's end
        decides)."""
        await self.db.execute(
            """UPDATE threads SET status = %s, updated_at = now()
               WHERE id = %s AND user_id = %s AND status <> 'busy'""",
            (status, thread_id, user_id),
        )

    async def delete(self, thread_id: str, user_id: uuid.UUID) -> bool:
        """The thread with its runs and transcript (the checkpoints are the checkpointer's)."""
        n = await self.db.execute("DELETE FROM threads WHERE id = %s AND user_id = %s", (thread_id, user_id))
        return bool(n)

    async def drop(self, thread_id: str) -> None:
        """The service's own deletion of a stateless run's thread (engine/engine.py)."""
        await self.db.execute("DELETE FROM threads WHERE id = %s", (thread_id,))

    async def delete_run(self, thread_id: str, run_id: uuid.UUID, user_id: uuid.UUID) -> str:
        """Forget a finished run of one of the user's threads: deleted, active (pending or
        running: cancel it first) or missing."""
        row = await self.db.fetchrow(
            """WITH target AS (
                   SELECT r.id, r.status FROM runs r JOIN threads t ON t.id = r.thread_id
                   WHERE r.id = %s AND r.thread_id = %s AND t.user_id = %s),
               gone AS (
                   DELETE FROM runs WHERE id IN (SELECT id FROM target
                                                 WHERE status NOT IN ('pending', 'running'))
                   RETURNING id)
               SELECT (SELECT status FROM target) AS status, (SELECT count(*) FROM gone) AS n""",
            (run_id, thread_id, user_id),
        )
        if row is None or row["status"] is None:
            return "missing"
        return "deleted" if row["n"] else "active"
