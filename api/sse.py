"""Server-Sent Events helpers (sse-starlette does the protocol, pings and disconnects)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette.sse import EventSourceResponse, ServerSentEvent

# Proxies (nginx) must not buffer a token stream; browsers must not cache it.
NO_BUFFERING = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(events: AsyncIterator[ServerSentEvent]) -> EventSourceResponse:
    return EventSourceResponse(events, headers=NO_BUFFERING, ping=15)


def named(event: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data, default=str), event=event)


def plain(data: Any) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data, default=str))
