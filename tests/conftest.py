"""Shared fixtures: one embedded Postgres (pgvector) per test session, the service opened on it
once, and a real ASGI client over the app with its lifespan running."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
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
async def services(app):  # type: ignore[no-untyped-def]
    return app.state.services


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as c:
        yield c


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dev:{user}"}
