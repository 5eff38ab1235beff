"""The LangGraph Agent Server API (what `langgraph-sdk`, `useStream`, Agent Chat UI and LangGraph
Studio speak) at the root of the service, over the run engine, with the service's auth: one router
per resource. README, "Agent Server API", lists what is served and what is not."""

from collections.abc import Awaitable, Callable, Iterable

from fastapi import APIRouter, HTTPException
from fastapi.routing import APIRoute
from starlette.routing import Match

from api.agent import assistants, meta, runs, threads
from api.errors import ErrorBody

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def method_guards(routers: Iterable[APIRouter]) -> APIRouter:
    """405 with `Allow` for the methods a path does not serve, where another route would
    otherwise take them: `GET /threads/search` would be `GET /threads/{thread_id}` of a thread
    named "search" (a 422), `GET /threads/{id}/runs/wait` a run named "wait"."""
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    served: dict[str, set[str]] = {}
    for route in routes:
        if route.include_in_schema:
            served.setdefault(route.path, set()).update(route.methods or ())
    guards = APIRouter()
    for path, methods in served.items():
        taken = [
            m
            for m in METHODS
            if m not in methods
            and any(
                r.path != path
                and r.matches({"type": "http", "path": path, "method": m, "root_path": ""})[0] == Match.FULL
                for r in routes
            )
        ]
        if taken:
            guards.add_api_route(path, _not_allowed(methods), methods=taken, include_in_schema=False)
    return guards


def _not_allowed(methods: set[str]) -> Callable[[], Awaitable[None]]:
    allow = ", ".join(sorted(methods))

    async def not_allowed() -> None:
        raise HTTPException(405, "Method Not Allowed", headers={"Allow": allow})

    return not_allowed


UNPARSABLE = {"model": ErrorBody, "description": "The body is not UTF-8 text."}


def document_unparsable_bodies(routers: Iterable[APIRouter]) -> None:
    """A body that is not UTF-8 never reaches the route: FastAPI answers 400 before parsing it.
    Say so on every operation that takes a body."""
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.body_field is not None:
                route.responses.setdefault(
                    400, {"model": ErrorBody, "description": "The body is not UTF-8 text."}
                )


# meta last: its not-served paths must not shadow served ones; the guards first.
_SERVED = (assistants.router, threads.router, runs.router, meta.router)
document_unparsable_bodies(_SERVED)
ROUTERS = (method_guards(_SERVED), *_SERVED)

__all__ = ["ROUTERS"]
