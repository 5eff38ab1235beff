"""The FastAPI application: resources opened once in the lifespan, thin routers, typed errors
mapped to HTTP status codes in one place."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.types import ASGIApp, Receive, Scope, Send

from api import agent
from api.routes import chat, companion, engagement, goals, health, jobs, memories, missions, runs, threads
from core.errors import (
    Busy,
    Conflict,
    DelightError,
    Failed,
    Invalid,
    ModelOutputInvalid,
    NotFound,
    Overloaded,
    Unavailable,
)
from core.logging import configure_logging, get_logger
from core.settings import Settings, get_settings
from engine import Engine
from graphs.registry import compile_all
from jobs.queue import ArqQueue, InProcessQueue
from jobs.scheduler import InProcessScheduler
from jobs.tasks import JobHost
from services.auth import Authenticator
from services.container import Services

log = get_logger("delight.api")

MAX_BODY_BYTES = 64 * 1024


class BodyLimit:
    """Reject bodies over MAX_BODY_BYTES with 413 before anything reads them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                response = JSONResponse(
                    {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"}, status_code=413
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _problem(e: dict) -> dict[str, str]:  # type: ignore[type-arg]
    if e["type"] == "json_invalid":
        reason = (e.get("ctx") or {}).get("error", "invalid JSON")
        return {"field": "body", "message": f"malformed JSON at character {e['loc'][-1]}: {reason}"}
    field = ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")) or "body"
    return {"field": field, "message": e["msg"]}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        services = await Services.open(settings)
        auth = Authenticator.from_settings(settings)
        app.state.services = services
        app.state.auth = auth
        # Compiled once per process with the Postgres checkpointer, never per request.
        app.state.graphs = compile_all(settings, services.checkpointer)
        # Every graph execution is a run of the engine. Background runs (and the jobs) go to ARQ
        # workers when REDIS_URL is set; else this process serves them too, with an in-process
        # queue and cron for the jobs.
        engine = Engine(
            services, app.state.graphs, queues=("api",) if settings.redis_url else ("api", "worker")
        )
        await engine.start()
        app.state.engine = engine
        scheduler = None
        if settings.redis_url:
            queue: ArqQueue | InProcessQueue = await ArqQueue.connect(settings)
        else:
            queue = InProcessQueue(settings)
        app.state.job_host = JobHost(services, engine, queue)
        if isinstance(queue, InProcessQueue):
            queue.host = app.state.job_host
            scheduler = InProcessScheduler(app.state.job_host, settings)
            scheduler.start()
        # Start-up objects live for the process: keep them out of the GC's generations so
        # full collections stay short under load.
        gc.collect()
        gc.freeze()
        log.info("api ready", extra={"auth": settings.auth_mode, "model": services.llm.kind})
        try:
            yield
        finally:
            if scheduler is not None:
                await scheduler.close()
            await queue.close()
            await engine.close()
            await app.state.job_host.close()
            await auth.aclose()
            await services.close()

    app = FastAPI(
        title="Delight orchestration",
        version="0.1.0",
        description="Eliza's chat and Delight's workflows as LangGraph graphs.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit)

    status = {
        NotFound: 404,
        Invalid: 422,
        Conflict: 409,
        Busy: 409,
        ModelOutputInvalid: 502,
        Unavailable: 503,
        Overloaded: 429,
        Failed: 500,
    }

    @app.exception_handler(DelightError)
    async def delight_error(_: Request, err: DelightError) -> JSONResponse:
        code = next((c for t, c in status.items() if isinstance(err, t)), 400)
        headers = {"Retry-After": str(err.retry_after)} if isinstance(err, Overloaded) else None
        return JSONResponse({"detail": err.message}, status_code=code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = [_problem(e) for e in err.errors()]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse({"detail": f"invalid request: {summary}", "errors": problems}, status_code=422)

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def db_down(_: Request, err: Exception) -> JSONResponse:
        log.error("database unavailable", extra={"error": repr(err)})
        return JSONResponse({"detail": "database unavailable, try again shortly"}, status_code=503)

    for module in (health, chat, companion, threads, memories, goals, missions, engagement, runs, jobs):
        app.include_router(module.router)
    for router in agent.ROUTERS:  # the Agent Server API, at the root
        app.include_router(router)
    return app
