"""The chat turn's write-back: everything a turn leaves behind in ONE transaction, sent as one
pipeline (one round trip on one pooled connection):

    thread upsert -> access stats of the recalled memories -> task memory of the exchange
    -> durable fact (personal memory) -> transcript rows -> the turn's usage row
    [-> the user's memories still waiting for a vector]

Statements between two pipeline syncs run in one implicit transaction: if any fails, none
applies. Replays write nothing twice: memory and transcript ids derive from the message ids
(`ON CONFLICT DO NOTHING`), the usage row is keyed by the turn, and the statements that are not
naturally idempotent (access counters, merges into an existing memory) run before the usage row
is inserted and skip once it exists (`usage.TURN_RECORDED`). That relies on one run per thread at
a time, which the checkpointer needs anyway.

Embeddings of the new memories are fetched in one request before the transaction. If that
fails or takes longer than BRANCH_TIMEOUT_S, the turn is not failed: the memories are stored
without a vector (recall skips them) and a later write-back of the same user, whose own embedding
works, embeds them (`settle`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from core.errors import NotFound
from core.logging import get_logger
from core.settings import Settings
from services.chat_threads import Threads, is_foreign_thread
from services.db import Database
from services.memory import MemoryStore
from services.usage import TURN_RECORDED, turn_statement
from state.schemas import Tier, Usage

log = get_logger("delight.writeback")


@dataclass(frozen=True)
class NewMemory:
    id: uuid.UUID
    tier: Tier
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TurnRecord:
    """What one chat turn leaves behind."""

    user_id: uuid.UUID
    thread_id: str
    turn_key: str  # unique per turn (derived from the user's message id)
    messages: list[tuple[str, str, str]]  # transcript rows: (message_id, role, content)
    memories: list[NewMemory]
    recalled: list[uuid.UUID]  # memories recalled this turn: their access stats move
    usage: Usage
    model: str
    now: datetime
    site: str = "chat.turn"


@dataclass(frozen=True)
class WriteResult:
    embedded: bool  # False: the new memories are waiting for their vector
    settled: int = 0  # waiting memories of the user embedded by this write-back


class ChatWriteBack:
    def __init__(self, db: Database, memory: MemoryStore, settings: Settings) -> None:
        self.db = db
        self.memory = memory
        self.settings = settings

    async def write(self, turn: TurnRecord) -> WriteResult:
        vectors = await self._embed([m.content for m in turn.memories], "turn's memories")
        guard = {"turn_key": turn.turn_key}
        statements = list(Threads.exchange_statements(turn.thread_id, turn.user_id, turn.messages))
        if turn.recalled:
            sql, params = self.memory.touch_statement(
                turn.user_id, turn.recalled, turn.now, unless=TURN_RECORDED
            )
            statements.append((sql, params | guard))
        for i, m in enumerate(turn.memories):
            sql, params = self.memory.add_statement(
                turn.user_id,
                m.tier,
                m.content,
                m.metadata,
                vectors[i] if vectors is not None else None,
                now=turn.now,
                memory_id=m.id,
                unless=TURN_RECORDED,
            )
            statements.append((sql, params | guard))
        statements.append(
            turn_statement(
                turn_key=turn.turn_key,
                user_id=turn.user_id,
                site=turn.site,
                model=turn.model,
                usage=turn.usage,
            )
        )
        if vectors is not None:  # the embedder works: look for memories an outage left behind
            statements.append(self.memory.waiting_statement(turn.user_id))
        rows = await self._pipeline(statements)
        waiting = rows[-1] if vectors is not None else []
        settled = await self.settle(turn.user_id, waiting, turn.now) if waiting else 0
        return WriteResult(embedded=vectors is not None, settled=settled)

    async def settle(self, user_id: uuid.UUID, waiting: Sequence[dict[str, Any]], now: datetime) -> int:
        """Embed memories stored without a vector and give it to them (or merge them into a
        near-duplicate). Best effort: a failure leaves them waiting for the next write-back."""
        vectors = await self._embed([r["content"] for r in waiting], "waiting memories")
        if vectors is None:
            return 0
        try:
            await self._pipeline(
                [
                    self.memory.settle_statement(user_id, r["id"], v, now)
                    for r, v in zip(waiting, vectors, strict=True)
                ]
            )
        except Exception as err:
            log.warning("waiting memories not settled", extra={"user_id": str(user_id), "error": repr(err)})
            return 0
        return len(waiting)

    async def _embed(self, texts: list[str], what: str) -> list[list[float]] | None:
        """One embedding request, or None if it fails or exceeds BRANCH_TIMEOUT_S."""
        if not texts:
            return []
        try:
            async with asyncio.timeout(self.settings.branch_timeout_s):
                return await self.memory.embeddings.aembed_documents(texts)
        except Exception as err:  # the reply exists: the memories wait for their vector
            log.warning(
                "embedding failed; memories wait for their vector",
                extra={"what": what, "texts": len(texts), "error": repr(err)},
            )
            return None

    async def _pipeline(self, statements: list[tuple[str, dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        """Run the statements in one implicit transaction and one round trip; the rows of each."""
        async with self.db.connection() as conn:
            try:
                async with conn.pipeline():
                    cursors = [await conn.execute(sql, params) for sql, params in statements]
            except psycopg.errors.NotNullViolation as err:
                if is_foreign_thread(err):
                    raise NotFound("thread not found") from err
                raise
            return [await c.fetchall() if c.description else [] for c in cursors]
