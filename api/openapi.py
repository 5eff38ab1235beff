"""The OpenAPI document, told truthfully: besides what each route declares, every operation
documents what the edges can answer before or around it (api/app.py's handlers, the size limits,
the text check, bearer auth, the engine's admission), with the bodies they really send.

* 422 everywhere is `InvalidBody` (the text check runs on every path, query and Authorization
  header; request validation answers the same shape), never FastAPI's `HTTPValidationError`.
* 401 and 403 on operations that take a bearer token; 413 on operations with a body; 429 on
  operations that start runs of the engine (its admission control) and, with 404, 409 and 502,
  the typed errors a run can end with; 431, 500 and 503 on every operation. 429 and 503 carry
  `Retry-After`.
* Server-Sent Events answer `text/event-stream`, not JSON.

The rules read the routes (their dependencies and response classes), not a list of paths, so
they hold for routes added later."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from sse_starlette.sse import EventSourceResponse

from api.deps import get_engine
from api.errors import DESCRIPTIONS, RETRY_AFTER, ErrorBody, InvalidBody

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
REF = "#/components/schemas/{model}"
FASTAPI_422 = ("HTTPValidationError", "ValidationError")
ERROR_MODELS = ("/ErrorBody", "/InvalidBody", "/HTTPValidationError")

WWW_AUTHENTICATE = {
    "WWW-Authenticate": {"description": "`Bearer`: how to authenticate.", "schema": {"type": "string"}}
}
CONNECTION_CLOSE = {
    "Connection": {"description": "`close`: the connection is not reused.", "schema": {"type": "string"}}
}
# `itemSchema` (OpenAPI 3.2) describes each event; `schema` the stream as text for older tools.
EVENT_STREAM = {
    "text/event-stream": {
        "schema": {"type": "string", "description": "Server-Sent Events, as the operation describes."},
        "itemSchema": {
            "type": "object",
            "properties": {
                "event": {"type": "string", "description": "The event's name (`message` when unnamed)"},
                "data": {"type": "string", "contentMediaType": "application/json"},
                "id": {"type": "string", "description": "Send back as `Last-Event-ID` to resume"},
                "retry": {"type": "integer", "minimum": 0},
            },
            "required": ["event", "data"],
        },
    }
}

EVERY = (422, 431, 500, 503)
AUTHENTICATED = (401, 403)
WITH_BODY = (413,)
STARTS_RUNS = (404, 409, 429, 502)


def _dependencies(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _dependencies(dep)


def _is_sse(route: APIRoute) -> bool:
    if inspect.isclass(route.response_class) and issubclass(route.response_class, EventSourceResponse):
        return True
    returns = inspect.signature(route.endpoint, eval_str=True).return_annotation
    return inspect.isclass(returns) and issubclass(returns, EventSourceResponse)


def _error(code: int) -> dict[str, Any]:
    model = InvalidBody if code == 422 else ErrorBody
    entry: dict[str, Any] = {
        "description": DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
    }
    if code in (429, 503):
        entry["headers"] = {name: {**spec, "required": True} for name, spec in RETRY_AFTER.items()}
    elif code == 401:
        entry["headers"] = WWW_AUTHENTICATE
    elif code in (413, 431, 500):
        entry["headers"] = CONNECTION_CLOSE
    return entry


def _not_null(parameter: dict[str, Any]) -> None:
    """A query, path or header parameter is absent or a value: it cannot be JSON null, so the
    `anyOf [..., null]` pydantic writes for `X | None` is not what the wire accepts."""
    schema = parameter.get("schema", {})
    options = [s for s in schema.get("anyOf", []) if s != {"type": "null"}]
    if "anyOf" in schema and len(options) < len(schema["anyOf"]):
        rest = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
        parameter["schema"] = {**options[0], **rest} if len(options) == 1 else {**rest, "anyOf": options}


def _document(operation: dict[str, Any], codes: list[int]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for code in codes:
        declared = responses.get(str(code))
        entry = _error(code)
        if declared is None or code == 422:
            responses[str(code)] = entry
            continue
        ref = declared.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
        if not ref or ref.endswith(ERROR_MODELS):
            # The route's description; the body and headers the edge really sends.
            responses[str(code)] = {
                **entry,
                "description": declared.get("description") or entry["description"],
            }
        else:  # a body of the route's own (e.g. /health's 503): kept, with the edge's headers
            declared.setdefault("headers", {}).update(entry.get("headers", {}))
    operation["responses"] = dict(sorted(responses.items()))


def _components(schema: dict[str, Any]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, InvalidBody):
        doc = model.model_json_schema(ref_template=REF)
        schemas.update(doc.pop("$defs", {}))
        schemas[model.__name__] = doc
    # Every 422 is InvalidBody now: FastAPI's own models describe nothing the service sends.
    if "/HTTPValidationError" not in json.dumps(schema["paths"]):
        for name in FASTAPI_422:
            schemas.pop(name, None)


def build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    paths: dict[str, Any] = schema.get("paths", {})
    # Routes of included routers as FastAPI itself documents them (full path, merged settings).
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not getattr(context, "include_in_schema", False):
            continue
        operations = paths.get(context.path_format or route.path_format, {})
        calls = set(_dependencies(route.dependant))
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            codes = set(EVERY)
            if operation.get("security"):
                codes.update(AUTHENTICATED)
            if "requestBody" in operation:
                codes.update(WITH_BODY)
            if get_engine in calls:
                codes.update(STARTS_RUNS)
            _document(operation, sorted(codes))
            for parameter in operation.get("parameters", []):
                _not_null(parameter)
            if _is_sse(route):
                success = next((c for c in operation["responses"] if c.startswith("2")), "200")
                operation["responses"][success]["content"] = EVENT_STREAM
    _components(schema)
    return schema


def install(app: FastAPI) -> None:
    """Serve `build(app)` as the app's OpenAPI document (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise it
