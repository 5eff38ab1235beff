"""Request size limits, enforced on what actually arrives, before anything parses or
authenticates it.

* Body (`MAX_BODY_BYTES`, 413): `RequestLimits` rejects a `Content-Length` over the limit without
  reading a byte, and counts the bytes of every `http.request` message its `receive()` passes
  on, so a chunked body (no `Content-Length`) is cut off at the limit too: at most the limit
  plus one received chunk is ever held, whatever the client sends. FastAPI reads the body
  before dependencies run, so the limit fires before authentication.
* Headers (`MAX_HEADER_BYTES` / `MAX_HEADERS`, 431): the server protocol (`http_protocol`, used
  by `python -m api`) counts the bytes of the request head as they arrive and answers 431 and
  closes once they pass the limit, before the head is complete: uvicorn's httptools protocol
  has no such limit of its own (a 50 MB header line is buffered whole), while its h11 protocol
  stops at `h11_max_incomplete_event_size` (16 KiB) with a 400. `RequestLimits` checks the
  complete head again (count and size) for servers started another way (`uvicorn --factory`),
  which will have buffered the head before the app sees it.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Defaults of the settings of the same names (core/settings.py).
MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 100

# The connection cannot be reused after these: the rest of the request was not read.
CLOSE = {"Connection": "close"}


class BodyTooLarge(HTTPException):
    """Raised from `receive()` when the body passes the limit. An `HTTPException`, so FastAPI's
    body parsing lets it through unchanged (it turns other errors into a 400) and the app
    answers it as 413 with `detail`."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes", headers=CLOSE)


def body_too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body larger than {limit} bytes"}, status_code=413, headers=CLOSE)


def head_too_large(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=431, headers=CLOSE)


def head_problem(scope: Scope, max_header_bytes: int, max_headers: int) -> str | None:
    headers = scope.get("headers") or []
    if len(headers) > max_headers:
        return f"too many request headers (more than {max_headers})"
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    size += sum(len(name) + len(value) + 4 for name, value in headers)  # ": " and CRLF
    if size > max_header_bytes:
        return f"request headers larger than {max_header_bytes} bytes"
    return None


class RequestLimits:
    """ASGI middleware: 431 for a head over the limits, 413 for a body over the limit (declared
    or received). Registered outermost, so nothing runs before it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
        max_headers: int = MAX_HEADERS,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if problem := head_problem(scope, self.max_header_bytes, self.max_headers):
            await head_too_large(problem)(scope, receive, send)
            return
        limit = self.max_body_bytes
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > limit):
            await body_too_large(limit)(scope, receive, send)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Reached here only when the app did not answer it itself (e.g. a body read
            # outside FastAPI's parsing).
            if started:
                raise
            await body_too_large(limit)(scope, receive, send)


def http_protocol(max_header_bytes: int = MAX_HEADER_BYTES) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a limit on the request head, counted on the bytes
    received while the head is incomplete (at most the limit plus one read is buffered)."""

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        _head_bytes = 0
        _in_head = True

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._head_bytes > max_header_bytes and not self.transport.is_closing():
                self._reject_head()

        def on_message_begin(self) -> None:
            self._in_head = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_bytes = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head_bytes = True, 0

        def _reject_head(self) -> None:
            body = head_too_large(f"request headers larger than {max_header_bytes} bytes").body
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + body
            )
            self.logger.warning("request head over %d bytes: 431, connection closed", max_header_bytes)
            self.transport.close()

    return LimitedHttpToolsProtocol


def uvicorn_options(max_header_bytes: int = MAX_HEADER_BYTES) -> dict[str, Any]:
    """The server-side half of the limits, for `uvicorn.run`."""
    return {"http": http_protocol(max_header_bytes), "h11_max_incomplete_event_size": max_header_bytes}
