"""One validation for text at the edge. Request models use `Text` (a pydantic-validated `str`);
`TextGuard` applies the same check (core/text.py) to the path, the query string and the
Authorization header before routing, authentication or any body parsing, so a value Postgres
cannot store answers 422 naming its field and nothing is written or sent to a model."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from core.text import unstorable


def _storable(value: object) -> object:
    # Before pydantic's own str validation, which refuses a lone surrogate with a vaguer message.
    if isinstance(value, str) and (reason := unstorable(value)) is not None:
        raise PydanticCustomError("unstorable_text", reason)
    return value


Storable = BeforeValidator(_storable)
Text = Annotated[str, Storable]
"""A request string Postgres can store: no NUL, no unpaired surrogate. With constraints inside a
`Annotated[..., Field(...)] | None`, write `Annotated[str, Field(...), Storable]`: pydantic leaves
constraints placed after `Text`'s validator out of the JSON schema."""


def invalid(problems: list[dict[str, str]]) -> JSONResponse:
    """The project's 422 body: a one-line `detail` and one `{field, message}` per problem."""
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return JSONResponse({"detail": f"invalid request: {summary}", "errors": problems}, status_code=422)


def _path_field(scope: Scope) -> str:
    """The name of the path parameter holding the bad value (for the message), else "path".
    Matched against the documented route templates, only for a rejected request."""
    app = scope.get("app")
    try:
        paths = app.openapi().get("paths", {}) if app is not None and hasattr(app, "openapi") else {}
    except Exception:  # naming the field is a courtesy: the answer is 422 regardless
        paths = {}
    method = scope.get("method", "GET").lower()
    for template, operations in paths.items():
        if method not in operations:
            continue
        regex, _, _ = compile_path(template)
        if (m := regex.match(scope.get("path", ""))) is not None:
            for name, value in m.groupdict().items():
                if unstorable(value):
                    return name
    return "path"


def text_problems(scope: Scope) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    if reason := unstorable(scope.get("path", "")):
        problems.append({"field": _path_field(scope), "message": reason})
    query: bytes = scope.get("query_string", b"")
    if query:
        # Decoded exactly as Starlette's QueryParams decodes them (percent-escapes included).
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if (reason := unstorable(name) or unstorable(value)) is not None:
                problems.append({"field": name if not unstorable(name) else "query", "message": reason})
    for name, value in scope.get("headers", ()):
        if name == b"authorization" and (reason := unstorable(value.decode("latin-1"))):
            problems.append({"field": "authorization", "message": reason})
    return problems


class TextGuard:
    """ASGI middleware: 422 for a path, query value or Authorization header that Postgres
    cannot store, before the app (and its auth dependencies) sees the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (problems := text_problems(scope)):
            await invalid(problems)(scope, receive, send)
            return
        await self.app(scope, receive, send)
