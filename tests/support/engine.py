"""Engines for tests that run workflows on services of their own (a scripted model, other
settings): a real `Engine` (its own LISTEN connection, claim and lease loops) on the session's
database, closed at the end of the block."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from engine import Engine
from graphs.registry import compile_all
from services.container import Services


@asynccontextmanager
async def engine_for(services: Services, **options: Any) -> AsyncIterator[Engine]:
    """An engine serving both queues: the runs these tests submit start in it at once."""
    options.setdefault("queues", ("api", "worker"))
    engine = Engine(services, compile_all(services.settings, services.checkpointer), **options)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.close()
