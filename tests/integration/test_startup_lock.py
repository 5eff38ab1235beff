"""Two processes starting together on a fresh database: one sets up the checkpoint schema
(whose migrations include CREATE INDEX CONCURRENTLY) while the other waits for the set-up lock.
CREATE INDEX CONCURRENTLY waits for every open snapshot, so a process blocked inside
`pg_advisory_lock` deadlocked the one holding the lock, a cycle Postgres cannot see (its other
half is in the holder's Python code). Seen as API processes that never became healthy."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from core.settings import Settings
from services.container import Services

SETUP_LOCK = 7110311002  # services/container.py


async def test_a_waiting_process_does_not_block_the_checkpoint_set_up(pg_url: str) -> None:
    name = f"startup_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
        await admin.execute(f"CREATE DATABASE {name}")
    url = pg_url.replace("/postgres?", f"/{name}?")
    try:
        # "Process A" holds the set-up lock on one connection...
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as holder:
            await holder.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK,))
            # ... while "process B" starts, migrates, and waits for that lock.
            starting = asyncio.create_task(Services.open(Settings(database_url=url, db_pool_min=1)))
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as probe:
                for _ in range(300):
                    cur = await probe.execute("SELECT to_regclass('alembic_version') IS NOT NULL AS ok")
                    row = await cur.fetchone()
                    if row is not None and row[0]:
                        break
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # B has reached the lock
            assert not starting.done()
            # A now sets up the checkpoint schema (CREATE INDEX CONCURRENTLY among it): it must
            # finish while B waits.
            async with AsyncPostgresSaver.from_conn_string(url) as saver:
                await asyncio.wait_for(saver.setup(), timeout=20)
            await holder.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))
            services = await asyncio.wait_for(starting, timeout=20)
            await services.close()
    finally:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
