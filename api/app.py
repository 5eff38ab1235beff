"""The FastAPI application: resources opened once in the lifespan, thin routers, typed errors
mapped to HTTP status codes in one place."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import agent, openapi
from api.errors import UNAVAILABLE_RETRY_S
from api.limits import CLOSE, RequestLimits
from api.routes import (
    admin,
    chat,
    companion,
    engagement,
    goals,
    health,
    jobs,
    memories,
    missions,
    runs,
    threads,
)
from api.validation import TextGuard, invalid
from core.errors import (
    Busy,
    Conflict,
    DelightError,
    Failed,
    Invalid,
    InvalidText,
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

STATIC = Path(__file__).parent / "static"


def _problem(e: dict) -> dict[str, str]:
    if e["type"] == "json_invalid":
        reason = (e.get("ctx") or {}).get("error", "invalid JSON")
        return {"field": "body", "message": f"malformed JSON at character {e['loc'][-1]}: {reason}"}
    field = ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")) or "body"
    return {"field": field, "message": e["msg"]}


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def require_loopback_for_dev(settings: Settings) -> None:
    """Dev auth trusts any `dev:<id>` token: it must never face a network, however the app is
    served (`python -m api`, `uvicorn --factory`, another server)."""
    if settings.auth_mode == "dev" and settings.host not in LOOPBACK:
        raise SystemExit("invalid configuration: AUTH_MODE=dev only binds loopback (set HOST=127.0.0.1)")


def cors_options(origins: list[str]) -> dict[str, Any]:
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
    require_loopback_for_dev(settings)

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
    # Added innermost first. A request meets CORS (so every answer, a 413 or 503 too, carries the
    # headers the browser needs to let the app read it), then the size limits, then the text
    # check, before routing and auth.
    app.add_middleware(TextGuard)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
    )
    app.add_middleware(CORSMiddleware, **cors_options(settings.allowed_origins))

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
        if isinstance(err, InvalidText):
            return invalid([{"field": err.field, "message": err.reason}])
        code = next((c for t, c in status.items() if isinstance(err, t)), 400)
        headers = None
        if isinstance(err, Overloaded):
            headers = {"Retry-After": str(err.retry_after)}
        elif isinstance(err, Unavailable):  # the database or the model: worth another try soon
            headers = {"Retry-After": str(UNAVAILABLE_RETRY_S)}
        return JSONResponse({"detail": err.message}, status_code=code, headers=headers)

    # A route's own 422 (`HTTPException(422, ...)`) answers the same shape as every other 422,
    # its `detail` unchanged; the route's message names the input.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        if err.status_code == 422:
            body = {"detail": str(err.detail), "errors": [{"field": "request", "message": str(err.detail)}]}
            return JSONResponse(body, status_code=422, headers=err.headers)
        return await http_exception_handler(request, err)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        return invalid([_problem(e) for e in err.errors()])

    # The last line behind the edge's text check: a value Postgres refused is the client's
    # input. The message is generic: Postgres' own quotes the value.
    @app.exception_handler(psycopg.DataError)
    @app.exception_handler(sqlalchemy.exc.DataError)
    async def data_error(_: Request, err: Exception) -> JSONResponse:
        log.warning("database refused a value", extra={"error": type(err).__name__})
        problem = {"field": "body", "message": "contains a value the database cannot store"}
        return invalid([problem])

    # Unhandled errors: Starlette sends this 500 and re-raises (the server logs the traceback and
    # closes the connection), so say `Connection: close` or a keep-alive client's next request
    # lands on a socket being closed.
    @app.exception_handler(Exception)
    async def server_error(_: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"detail": "internal error"}, status_code=500, headers=CLOSE)

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def db_down(_: Request, err: Exception) -> JSONResponse:
        log.error("database unavailable", extra={"error": repr(err)})
        return JSONResponse(
            {"detail": "database unavailable, try again shortly"},
            status_code=503,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_S)},
        )

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
        admin,
    ):
        app.include_router(module.router)

    # The live graph page: plain files, no build step, every asset served from here.
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    for router in agent.ROUTERS:  # the Agent Server API, at the root
        app.include_router(router)
    openapi.install(app)
    return app
