"""`Services`: every process-wide resource, opened once (FastAPI lifespan, worker start-up, or
lazily for LangGraph Studio) and handed to nodes through the graph's runtime context."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from dataclasses import dataclass

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

from core.logging import get_logger
from core.settings import Settings, get_settings
from services.adaptive import AdaptiveReads
from services.chat_threads import Threads
from services.checkpointer import PooledPostgresSaver
from services.db import Database
from services.embeddings import CachedEmbeddings, build_embeddings
from services.goals import Goals
from services.insights import InsightStore
from services.llm.gateway import ModelGateway, build_gateway
from services.maintenance import Maintenance
from services.memory import MemoryStore
from services.missions import Missions
from services.narrative import NarrativeStore
from services.notifications import Notifications
from services.nudges import NudgeStore
from services.progress import ProgressService
from services.runs import RunStore
from services.usage import UsageLedger
from services.users import Users
from services.writeback import ChatWriteBack

log = get_logger("delight.services")


def checkpoint_types() -> list[tuple[str, str]]:
    """Types allowed out of checkpoints (strict msgpack: no arbitrary class from a tampered
    row): every pydantic model defined in the `state` package, where graph state lives."""
    import state

    allowed = []
    for info in pkgutil.iter_modules(state.__path__):
        module = importlib.import_module(f"state.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__:
                allowed.append((module.__name__, name))
    return sorted(allowed)


CHECKPOINT_TYPES = checkpoint_types()


@dataclass
class Services:
    settings: Settings
    db: Database
    checkpointer: AsyncPostgresSaver
    llm: ModelGateway
    embeddings: CachedEmbeddings
    memory: MemoryStore
    progress: ProgressService
    users: Users
    threads: Threads
    goals: Goals
    missions: Missions
    adaptive: AdaptiveReads
    notifications: Notifications
    runs: RunStore
    narrative: NarrativeStore
    insights: InsightStore
    nudges: NudgeStore
    maintenance: Maintenance
    writeback: ChatWriteBack
    usage: UsageLedger

    @classmethod
    async def open(cls, settings: Settings) -> Services:
        db = await Database.connect(settings)
        try:
            await db.migrate()
            checkpointer = PooledPostgresSaver(
                db.pool,
                serde=JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES),
                synchronous_commit=not settings.run_async_commit,
            )
            async with db.connection() as conn:
                # Serialise checkpoint-schema set-up across processes starting together. Poll
                # for the lock: a session blocked in pg_advisory_lock holds a snapshot, which the
                # holder's CREATE INDEX CONCURRENTLY waits for, a deadlock Postgres cannot see.
                while True:
                    cur = await conn.execute("SELECT pg_try_advisory_lock(7110311002) AS ok")
                    row = await cur.fetchone()
                    if row is not None and row["ok"]:
                        break
                    await asyncio.sleep(0.05)
                try:
                    await checkpointer.setup()
                finally:
                    await conn.execute("SELECT pg_advisory_unlock(7110311002)")
            embeddings = build_embeddings(settings)
            memory = await MemoryStore.open(db, embeddings, settings)
        except BaseException:
            await db.close()
            raise
        usage = UsageLedger(db)
        llm = build_gateway(settings, sink=usage)
        log.info(
            "services ready",
            extra={"database": db.kind, "model": llm.description, "embedder": embeddings.name},
        )
        return cls(
            settings=settings,
            db=db,
            checkpointer=checkpointer,
            llm=llm,
            embeddings=embeddings,
            memory=memory,
            progress=ProgressService(db, settings.dci_window_days),
            users=Users(db),
            threads=Threads(db),
            goals=Goals(db),
            missions=Missions(db),
            adaptive=AdaptiveReads(db),
            notifications=Notifications(db),
            runs=RunStore(db, async_commit=settings.run_async_commit),
            narrative=NarrativeStore(db),
            insights=InsightStore(db),
            nudges=NudgeStore(db),
            maintenance=Maintenance(db),
            writeback=ChatWriteBack(db, memory, settings),
            usage=usage,
        )

    async def close(self) -> None:
        await self.db.close()


_shared: Services | None = None
_shared_lock = asyncio.Lock()


async def shared_services() -> Services:
    """Lazily opened services for graphs run without a host (LangGraph Studio, scripts)."""
    global _shared
    async with _shared_lock:
        if _shared is None:
            _shared = await Services.open(get_settings())
        return _shared
