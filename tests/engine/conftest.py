"""Engine tests run on a database of their module alone: no engine of the rest of the session
claims their runs, and what they count (runs, checkpoints, messages) is theirs."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from core.settings import Settings
from services.container import Services
from services.llm.gateway import ModelGateway
from tests.support.fakes import ScriptedChatModel
from tests.support.openai_server import FakeOpenAI


@pytest.fixture(scope="module")
async def base(settings: Settings, template_database: str, pg_url: str) -> AsyncIterator[Services]:
    import psycopg

    from tests.conftest import database_url

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "delight_template"')
    svc = await Services.open(settings.model_copy(update={"database_url": database_url(pg_url, name)}))
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
def scripted(base: Services) -> Callable[..., tuple[Services, ScriptedChatModel]]:
    """Services whose model is scripted (stall or fail a call), and settings overridden."""

    def make(**settings: Any) -> tuple[Services, ScriptedChatModel]:
        model = ScriptedChatModel()
        s = base.settings.model_copy(update=settings)
        llm = ModelGateway(s, {"cheap": model, "premium": model}, kind="offline", sink=base.llm.sink)
        return dataclasses.replace(base, settings=s, llm=llm), model

    return make


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    """An OpenAI-compatible server on 127.0.0.1 (the real ChatOpenAI client talks to it)."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def openai_app(settings: Settings, new_database: Callable[[], str], model: FakeOpenAI) -> Callable[..., Any]:
    """The API on a database of its own, its models behind `model`; `**settings` on top."""
    from api.app import create_app

    def make(**overrides: Any) -> Any:
        update = {"database_url": new_database(), "openai_base_url": model.base_url, "openai_api_key": "test"}
        return create_app(settings.model_copy(update={**update, "llm_backoff_initial_s": 0.01, **overrides}))

    return make
