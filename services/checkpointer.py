"""`PooledPostgresSaver`: LangGraph's `AsyncPostgresSaver` without its per-instance lock, for
use with a connection pool.

Why: `AsyncPostgresSaver._cursor` wraps every database call in one `asyncio.Lock` per saver
instance, even when the saver was given an `AsyncConnectionPool` (upstream issue #7259). With one
saver per process, every checkpoint read and write of every concurrent turn queues behind that
lock: one process cannot run two checkpoint queries at once however large the pool. `make bench`
measures the ceiling on 2 cores: ~1,250 checkpoint calls/s with the lock, ~3,100 without (16
tasks), i.e. ~100 chat turns/s per process at ~12 checkpoint calls a turn (durability "async").

Why it is on (`services/container.py`): the lock serialises every checkpoint call of a process
behind the slowest one, including one waiting for a pooled connection (the collapse mode of a
saturated pool); without it nothing measured worse (README, Benchmarks: turns in process and under
overload over HTTP within noise of the upstream saver). It is also where checkpoint writes can
commit without waiting for the WAL flush (`RUN_ASYNC_COMMIT`, off by default).

Why dropping the lock is safe here:

- **What the lock protects is a single shared connection.** A psycopg `AsyncConnection` must not
  run two commands at once, and `AsyncPostgresSaver` also accepts one bare connection; the lock is
  what makes that case safe. With a pool, each `_cursor()` checks out its own connection for the
  duration of the call (`pool.connection()`), uses it from one coroutine only, and returns it
  afterwards. No two coroutines ever share a connection, so there is nothing left to protect.
  This class refuses anything but a pool, and refuses a pipeline (the shared-connection mode).
- **The pool is concurrency-safe** (psycopg_pool's `AsyncConnectionPool` serialises its own
  bookkeeping), and the connections are configured as the saver expects: autocommit,
  `prepare_threshold=0`, dict rows (`services/db.py`).
- **Every write is an idempotent upsert keyed by content** (`checkpoints` on thread, namespace and
  checkpoint id; `checkpoint_blobs` on thread, namespace, channel and version; `checkpoint_writes`
  on checkpoint, task and index), and `aput` / `aput_writes` each run in their own pipeline or
  transaction on their connection, exactly as before. Running them concurrently cannot interleave
  the statements of one call.
- **Ordering within a run does not come from the lock.** LangGraph itself chains a run's
  checkpoint saves (each `aput` waits for the previous one) and waits for every pending write
  before the run returns; pending writes are keyed by the checkpoint id they belong to, so a write
  landing before its checkpoint row is read correctly once both exist.
- **The lock never gave cross-process safety anyway**: it is per instance, so several worker
  processes (or pods) already run checkpoint I/O against the same tables concurrently. What
  keeps two runs of one thread from forking its history is the per-thread Postgres advisory lock
  the API takes for each turn (`Database.thread_lock`), which this class does not change.

`tests/integration/test_checkpointer.py` checks concurrent puts and reads from many tasks on
several event-loop threads, and that a chat-like graph resumes correctly through it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool


class PooledPostgresSaver(AsyncPostgresSaver):
    """An `AsyncPostgresSaver` on an `AsyncConnectionPool` whose calls each take their own pooled
    connection and run concurrently (no per-instance lock). See the module docstring.

    With `synchronous_commit=False`, each write (a checkpoint with its blobs, a step's pending
    writes) is one transaction committed without waiting for its WAL flush (`SET LOCAL
    synchronous_commit = off`, queued in the same pipeline: no extra round trip). Upstream's
    pipeline is one implicit transaction too, whose commit waits for the flush (an fsync)."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        serde: SerializerProtocol | None = None,
        *,
        synchronous_commit: bool = True,
    ) -> None:
        if not isinstance(pool, AsyncConnectionPool):
            raise TypeError(
                "PooledPostgresSaver needs an AsyncConnectionPool; use AsyncPostgresSaver "
                "(which locks) for a single connection"
            )
        super().__init__(pool, serde=serde)
        self.synchronous_commit = synchronous_commit

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        # As AsyncPostgresSaver._cursor for a pool, minus `async with self.lock`: the connection
        # is this call's alone until the block exits.
        async with cast(AsyncConnectionPool, self.conn).connection() as conn:  # a pool: __init__
            if pipeline and self.supports_pipeline and not self.synchronous_commit:
                # BEGIN and COMMIT queued in the pipeline itself: one round trip, at its sync
                # (psycopg's `transaction()` would sync on entry and on commit). After an error
                # the COMMIT is never sent and the pool rolls the connection back on return.
                async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    await cur.execute("BEGIN")
                    await cur.execute("SET LOCAL synchronous_commit = off")
                    yield cur
                    await cur.execute("COMMIT")
            elif pipeline and self.supports_pipeline:
                async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            elif pipeline:
                async with conn.transaction(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            else:
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
