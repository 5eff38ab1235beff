"""The FastAPI application: resources opened once in the lifespan, thin routers, typed errors
mapped to HTTP status codes in one place."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from psycopg_pool import PoolTimeout
from starlette.types import ASGIApp, Receive, Scope, Send

from api.agent import assistants
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
STATIC = Path(__file__).parent / "static"


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


def cors_options(origins: list[str]) -> dict[str, object]:
    """CORSMiddleware's options for the allowed origins: exact ones as a list, `:*` (any port)
    ones as one regex. Credentials stay off: the app sends a bearer header, never cookies."""
    exact = [o for o in origins if not o.endswith(":*")]
    ports = [re.escape(o.removesuffix(":*")) + r"(:\d+)?" for o in origins if o.endswith(":*")]
    return {
        "allow_origins": exact,
        "allow_origin_regex": f"^({'|'.join(ports)})$" if ports else None,
        "allow_methods": ["GET", "POST", "PATCH", "DELETE"],
        # What the app sends: the bearer token, JSON bodies, and an SSE resume point.
        "allow_headers": ["Authorization", "Content-Type", "Last-Event-ID"],
        "max_age": 600,
    }


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

    # /docs and /redoc with Swagger UI's and ReDoc's assets served from the installed package
    # (under /docs-assets), so they work with no network.
    app = FastAPIOffline(
        title="Delight orchestration",
        version="0.1.0",
        description="Eliza's chat and Delight's workflows as LangGraph graphs.",
        lifespan=lifespan,
        static_url="/docs-assets",
    )
    app.add_middleware(BodyLimit)
    # Outermost, so every answer (a 413 or 503 too) carries the CORS headers the browser needs
    # to let the app read it.
    app.add_middleware(CORSMiddleware, **cors_options(settings.allowed_origins))  # type: ignore[arg-type]

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

    for module in (
        health,
        chat,
        companion,
        threads,
        memories,
        goals,
        missions,
        engagement,
        runs,
        jobs,
        assistants,
    ):
        app.include_router(module.router)

    # The live graph page: plain files, no build step, every asset served from here.
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app
