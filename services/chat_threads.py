"""Chat threads and their transcript (`chat_messages`). Every read and write is scoped by owner
in the query itself."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg

from core.errors import NotFound
from services.db import Database


class Threads:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, user_id: uuid.UUID) -> str:
        thread_id = str(uuid.uuid4())
        await self.db.execute("INSERT INTO threads (id, user_id) VALUES (%s, %s)", (thread_id, user_id))
        return thread_id

    async def require_owned(self, thread_id: str, user_id: uuid.UUID) -> None:
        """404 for a thread that does not exist and for someone else's: never tell which."""
        row = await self.db.fetchrow(
            "SELECT 1 AS ok FROM threads WHERE id = %s AND user_id = %s", (thread_id, user_id)
        )
        if row is None:
            raise NotFound("thread not found")

    @staticmethod
    def exchange_statements(
        thread_id: str, user_id: uuid.UUID, messages: list[tuple[str, str, str]]
    ) -> list[tuple[str, dict[str, Any]]]:
        """The transcript of one exchange, as statements for the chat write-back's transaction:
        (message_id, role, content) rows, idempotent on message id so a resumed run does not
        write the exchange twice. A thread first seen here (a run started outside the API, e.g.
        LangGraph Studio) is registered to the user. Another user's thread is refused: its rows
        get no thread id, which violates `chat_messages.thread_id NOT NULL` and aborts the
        transaction (reported as `NotFound` by `is_foreign_thread`)."""
        values = ", ".join(f"(%(id{i})s, %(role{i})s, %(content{i})s, {i})" for i in range(len(messages)))
        params: dict[str, Any] = {"thread": thread_id, "user": user_id}
        for i, (mid, role, content) in enumerate(messages):
            params |= {f"id{i}": mid, f"role{i}": role, f"content{i}": content}
        return [
            (
                """INSERT INTO threads (id, user_id) VALUES (%(thread)s, %(user)s)
                   ON CONFLICT (id) DO UPDATE SET updated_at = now()
                   WHERE threads.user_id = EXCLUDED.user_id""",
                params,
            ),
            (
                # One microsecond apart, in order: the user's message sorts before the reply.
                f"""INSERT INTO chat_messages (id, thread_id, role, content, created_at)
                    SELECT v.id, (SELECT id FROM threads WHERE id = %(thread)s AND user_id = %(user)s),
                           v.role, v.content, clock_timestamp() + v.n * interval '1 microsecond'
                    FROM (VALUES {values}) AS v(id, role, content, n)
                    ON CONFLICT (id) DO NOTHING""",
                params,
            ),
        ]

    async def recent_with_messages(
        self, user_id: uuid.UUID, limit: int, messages_per_thread: int = 200
    ) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            """SELECT t.id, t.created_at, t.updated_at,
                      coalesce(m.messages, '[]'::jsonb) AS messages
               FROM threads t
               LEFT JOIN LATERAL (
                   SELECT jsonb_agg(jsonb_build_object('role', role, 'content', content,
                                                       'timestamp', created_at)
                                    -- a message whose turn did not complete says so
                                    || CASE WHEN status = 'ok' THEN '{}'::jsonb
                                            ELSE jsonb_build_object('status', status) END
                                    ORDER BY created_at) AS messages
                   FROM (SELECT role, content, created_at, status FROM chat_messages
                         WHERE thread_id = t.id ORDER BY created_at DESC LIMIT %s) last
               ) m ON true
               WHERE t.user_id = %s AND t.graph_id = 'chat'
               ORDER BY t.updated_at DESC
               LIMIT %s""",
            (messages_per_thread, user_id, limit),
        )
        return rows

    # --- a turn's outcome in the transcript (graphs/chat.py: settle_turn) ---------------------

    async def reply_to(self, thread_id: str, message_id: str) -> tuple[str, str] | None:
        """(id, content) of the reply recorded with this user message, if the turn's write-back
        committed (both rows are written in one transaction)."""
        row = await self.db.fetchrow(
            """SELECT a.id, a.content FROM chat_messages u
               JOIN chat_messages a ON a.thread_id = u.thread_id AND a.role = 'assistant'
                                   AND a.created_at >= u.created_at
               WHERE u.id = %s AND u.thread_id = %s AND u.status = 'ok'
               ORDER BY a.created_at LIMIT 1""",
            (message_id, thread_id),
        )
        return (row["id"], row["content"]) if row else None

    async def mark_message(
        self,
        thread_id: str,
        user_id: uuid.UUID,
        message_id: str,
        content: str,
        status: str,
        role: str = "user",
    ) -> None:
        """Keep a message of a turn that did not complete, visibly marked (failed, interrupted)."""
        await self.db.execute(
            """INSERT INTO chat_messages (id, thread_id, role, content, status)
               SELECT %s, t.id, %s, %s, %s FROM threads t WHERE t.id = %s AND t.user_id = %s
               ON CONFLICT (id) DO NOTHING""",
            (message_id, role, content, status, thread_id, user_id),
        )

    async def forget_messages(self, thread_id: str, message_ids: list[str]) -> None:
        await self.db.execute(
            "DELETE FROM chat_messages WHERE thread_id = %s AND id = ANY(%s)", (thread_id, message_ids)
        )


def is_foreign_thread(err: Exception) -> bool:
    """Whether a write-back failed because the thread belongs to someone else (see above)."""
    diag = getattr(err, "diag", None)
    return (
        isinstance(err, psycopg.errors.NotNullViolation)
        and diag is not None
        and diag.table_name == "chat_messages"
        and diag.column_name == "thread_id"
    )


def as_iso(value: datetime | str) -> str:
    return value if isinstance(value, str) else value.isoformat()
