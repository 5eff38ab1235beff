"""The error bodies the service answers, as OpenAPI models, and how a route documents the
statuses it can answer (`responses=responses(404, 409)`). Every error body has a one-line
`detail`; a 422 also names each field. 429 and 503 always carry `Retry-After`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, in one line.")


class Problem(BaseModel):
    field: str = Field(
        description="The input that was refused: a dotted body path, or a query, path or header name."
    )
    message: str


class InvalidBody(ErrorBody):
    errors: list[Problem] = Field(description="One entry per refused input.")


DESCRIPTIONS: dict[int, str] = {
    400: "The request cannot be served as asked.",
    401: "Missing, malformed or expired bearer token.",
    403: "The token is valid but not allowed here.",
    404: "Not found, or not the caller's.",
    409: "Conflicts with the current state (for example a busy thread).",
    413: "The body is larger than MAX_BODY_BYTES.",
    422: "Invalid input: each refused field is named.",
    429: "Too many requests or runs; retry after `Retry-After` seconds.",
    431: "Too many headers, or headers larger than MAX_HEADER_BYTES.",
    500: "Internal error; the connection is closed.",
    502: "The model's output could not be used.",
    503: "The database or the model is unavailable; retry after `Retry-After` seconds.",
}

UNAVAILABLE_RETRY_S = 2  # Retry-After of a 503: a database or model hiccup

RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer `codes` besides its success."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "model": InvalidBody if code == 422 else ErrorBody,
            "description": DESCRIPTIONS[code],
        }
        if code in (429, 503):
            entry["headers"] = RETRY_AFTER
        out[code] = entry
    return out
