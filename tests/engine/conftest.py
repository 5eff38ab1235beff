"""Engine tests run on a database of their module alone: no engine of the rest of the session
claims their runs, and what they count (runs, checkpoints, messages) is theirs."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from core.settings import Settings
from services.container import Services
from services.llm.gateway import ModelGateway
from tests.support.fakes import ScriptedChatModel


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
