"""Shared fixtures: one embedded Postgres (pgvector) per test session, the service opened on it
once, and a real ASGI client over the app with its lifespan running."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

# Tests never reach a real model or a developer's configuration.
for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DATABASE_URL", "AUTH_MODE"):
    os.environ.pop(var, None)

import httpx  # noqa: E402

from core.settings import Settings  # noqa: E402
from services.db import start_embedded_postgres  # noqa: E402


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    data = Path(tempfile.mkdtemp(prefix="delight-test-pg-"))
    try:
        yield start_embedded_postgres(data)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def database_url(server_url: str, name: str) -> str:
    """The URL of database `name` on the server of `server_url` (a libpq URI)."""
    base, _, query = server_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
async def template_database(pg_url: str) -> str:
    """A database migrated once (schema, functions, checkpoint tables) to copy fresh ones from."""
    import psycopg

    from services.container import Services

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "delight_template"')
    url = database_url(pg_url, "delight_template")
    svc = await Services.open(Settings(database_url=url))
    await svc.close()
    return url


@pytest.fixture
def new_database(pg_url: str, template_database: str) -> Callable[[], str]:
    """Fresh databases of their own for tests of several processes: no other test's runs there,
    and no engine of this test session claiming theirs."""
    import psycopg

    def create() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "delight_template"')
        return database_url(pg_url, name)

    return create


@pytest.fixture
async def own_services(settings: Settings, new_database: Callable[[], str]) -> AsyncIterator[object]:
    """The service's resources on a database of this test alone (for writes that sweep every
    user, like claiming all due nudges)."""
    from services.container import Services

    svc = await Services.open(settings.model_copy(update={"database_url": new_database()}))
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture(scope="session")
def settings(pg_url: str) -> Settings:
    return Settings(
        database_url=pg_url,
        db_pool_max=30,
        branch_timeout_s=5.0,
        llm_backoff_initial_s=0.01,
        admin_user_ids=["admin"],
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[object]:
    from api.app import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def services(app):
    return app.state.services


@pytest.fixture(scope="session")
async def engine(app):
    return app.state.engine


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as c:
        yield c


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dev:{user}"}
