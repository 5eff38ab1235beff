"""An OpenAI-compatible HTTP server on loopback, for tests.

openai 3.x talks through httpx2, which respx / pytest-httpx cannot intercept, so tests point the
real client (``ChatOpenAI(base_url=server.base_url, ...)``) at this server instead::

    with FakeOpenAI() as server:
        server.fail(429)            # next request: 429 with `retry-after-ms: 1`
        server.hang(5)              # the one after: no answer for 5 s (client times out)
        server.drop()               # the one after: connection closed without a response
        ...                         # then every request succeeds

Endpoints: ``POST /v1/chat/completions`` (plain and SSE streaming) and ``POST /v1/embeddings``.
It is a raw ASGI app served by uvicorn (h11) in a daemon thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Self

import uvicorn

log = logging.getLogger(__name__)

DEFAULT_REPLY = "Hello from the test server. I hear you."

Responder = Callable[[dict[str, Any]], dict[str, Any] | None]
ToolArguments = Callable[[str, dict[str, Any], dict[str, Any]], dict[str, Any]]

_STRING_FORMATS = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "email": "x@example.com",
    "uri": "https://example.com",
}


def example_from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """A minimal object valid against ``schema``: required properties (plus defaulted ones),
    numbers at 0 or their minimum, strings "x", nullable values null, empty arrays."""
    root = schema if root is None else root
    if "$ref" in schema:  # local refs only: "#/$defs/Name"
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return example_from_schema({**target, **rest}, root)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("nullable"):
        return None
    for key in ("anyOf", "oneOf"):
        if options := schema.get(key):
            if any(option.get("type") == "null" for option in options):
                return None
            return example_from_schema(options[0], root)
    if parts := schema.get("allOf"):
        values = [example_from_schema(part, root) for part in parts]
        if all(isinstance(v, dict) for v in values):
            return {k: v for value in values for k, v in value.items()}
        return values[0]

    kind = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(kind, list):
        if "null" in kind:
            return None
        kind = kind[0] if kind else None
    if kind == "object":
        required = set(schema.get("required", []))
        return {
            name: example_from_schema(sub, root)
            for name, sub in schema.get("properties", {}).items()
            if name in required or "default" in sub
        }
    if kind == "array":
        item = schema.get("items") or {}
        return [example_from_schema(item, root) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        default = "x" * max(1, schema.get("minLength", 1))
        return _STRING_FORMATS.get(schema.get("format", ""), default)
    if kind in ("number", "integer"):
        if "minimum" in schema:
            value = schema["minimum"]
        elif "exclusiveMinimum" in schema:
            value = schema["exclusiveMinimum"] + 1
        elif schema.get("maximum", 0) < 0:
            value = schema["maximum"]
        elif schema.get("exclusiveMaximum", 1) <= 0:
            value = schema["exclusiveMaximum"] - 1
        else:
            value = 0
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    return None


def _default_tool_arguments(name: str, schema: dict[str, Any], body: dict[str, Any]) -> dict:
    return example_from_schema(schema)


def _error_body(status: int) -> dict[str, Any]:
    kind, code, message = {
        400: ("invalid_request_error", "invalid_request", "Invalid request."),
        401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
        403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
        404: ("invalid_request_error", "model_not_found", "The model does not exist."),
        429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    }.get(status, ("server_error", None, "The server had an error processing your request."))
    error = {"message": f"{message} (test server)", "type": kind, "code": code, "param": None}
    return {"error": error}


def _as_json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _usage(body: dict[str, Any], completion_text: str) -> dict[str, int]:
    prompt = sum(len(_text_of(m.get("content"))) for m in body.get("messages", [])) // 4 + 1
    completion = len(completion_text.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _embedding(item: Any, dimensions: int) -> bytes:
    """A deterministic unit vector (float32, little endian) seeded by a hash of ``item``."""
    seed = hashlib.sha256(json.dumps(item).encode()).digest()
    rng = random.Random(seed)
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = sum(x * x for x in vector) ** 0.5 or 1.0
    return struct.pack(f"<{dimensions}f", *(x / norm for x in vector))


class FakeOpenAI:
    """The test server. All attributes may be changed while it runs; hooks run on its thread.

    - ``reply_text``: the assistant's text answer.
    - ``responder(body)``: return ``{"content": str}`` and/or ``{"tool_calls": [{"name": str,
      "arguments": dict | str}]}`` to answer a chat request, or ``None`` for the default answer.
    - ``tool_arguments(function_name, parameters_schema, body)``: the arguments of the tool call
      made when a request carries ``tools`` (and of the JSON content for a ``json_schema``
      ``response_format``). Default: ``example_from_schema(parameters_schema)``.
    - ``embedding_status(body)``: an HTTP error status to answer an embeddings request with
      (e.g. 500 while the embedder is "down" for some inputs), or ``None`` to answer it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests: list[dict[str, Any]] = []
        self._faults: deque[tuple[str, Any]] = deque()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = 0
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        if self._thread is not None:
            return self
        self._stopping.clear()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            http="h11",
            loop="asyncio",
            lifespan="off",
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name=f"fake-openai-{self.port}",
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends hangs
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- scripting -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of the JSON bodies received so far (including failed/hung/dropped ones)."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget requests and pending faults; restore the default reply and hooks."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._weather: Callable[[], tuple[str | None, Any]] = lambda: (None, None)
        self.reply_text = DEFAULT_REPLY
        self.responder: Responder | None = None
        self.tool_arguments: ToolArguments = _default_tool_arguments
        self.embedding_status: Callable[[dict[str, Any]], int | None] | None = None

    def storm(self, *, rate_429: float, rate_500: float, rate_hang: float, hang_s: float, seed: int) -> None:
        """From now on each request (one with no queued fault) fails at random, seeded: 429 with
        probability `rate_429`, 500 with `rate_500`, a hang of `hang_s` with `rate_hang`."""
        import random

        rng = random.Random(seed)

        def draw() -> tuple[str | None, Any]:
            x = rng.random()
            if x < rate_429:
                return "fail", (429, None)
            if x < rate_429 + rate_500:
                return "fail", (500, None)
            if x < rate_429 + rate_500 + rate_hang:
                return "hang", hang_s
            return None, None

        with self._lock:
            self._weather = draw

    def fail(self, status: int, times: int = 1, body: dict[str, Any] | str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` and an OpenAI-style error body."""
        self._push("fail", (status, body), times)

    def hang(self, seconds: float, times: int = 1) -> None:
        """Wait ``seconds`` before answering the next ``times`` requests (or until the client
        gives up, whichever comes first)."""
        self._push("hang", seconds, times)

    def drop(self, times: int = 1) -> None:
        """Close the connection of the next ``times`` requests without sending a response."""
        self._push("drop", None, times)

    def _push(self, kind: str, arg: Any, times: int) -> None:
        with self._lock:
            self._faults.extend([(kind, arg)] * times)

    # -- the ASGI app ----------------------------------------------------------------------------

    async def _app(self, scope: dict, receive: Callable, send: Callable) -> None:
        raw = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return await _send_json(send, 400, _error_body(400))
        with self._lock:
            self._requests.append(body)
            fault: tuple[str | None, Any] = self._faults.popleft() if self._faults else self._weather()
        kind, arg = fault

        if kind == "hang":
            deadline = time.monotonic() + arg
            while (left := deadline - time.monotonic()) > 0:
                if self._stopping.is_set():
                    return await _send_json(send, 503, _error_body(503), retry=False)
                try:  # after the body, receive() only returns once the client disconnects
                    await asyncio.wait_for(receive(), min(left, 0.05))
                    return
                except TimeoutError:
                    pass
        elif kind == "drop":
            return await _drop_connection(send)
        elif kind == "fail":
            status, error = arg
            return await _send_json(send, status, _error_body(status) if error is None else error)

        path = scope["path"].rstrip("/")
        try:
            if path.endswith("/chat/completions"):
                answer = self._answer(body)
                if body.get("stream"):
                    return await _send_sse(send, list(self._chunks(body, answer)))
                return await _send_json(send, 200, self._completion(body, answer))
            if path.endswith("/embeddings"):
                if self.embedding_status is not None and (status := self.embedding_status(body)):
                    return await _send_json(send, status, _error_body(status))
                return await _send_json(send, 200, self._embeddings(body))
        except Exception as exc:  # a hook failed: surface it to the client, without retries
            log.exception("fake OpenAI server: error answering %s", path)
            error = _error_body(500)
            error["error"]["message"] = f"test server error: {exc!r}"
            return await _send_json(send, 500, error, retry=False)
        error = _error_body(404)
        error["error"]["message"] = f"the test server does not implement {scope['path']}"
        await _send_json(send, 404, error, retry=False)

    # -- answers ---------------------------------------------------------------------------------

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The assistant message as ``{"content": str | None, "tool_calls": [...]}``."""
        if self.responder is not None and (answer := self.responder(body)) is not None:
            return {"content": answer.get("content"), "tool_calls": answer.get("tool_calls", [])}
        tools = [t["function"] for t in body.get("tools") or [] if t.get("type") == "function"]
        choice = body.get("tool_choice")
        if tools and choice != "none":
            if isinstance(choice, dict) and "function" in choice:
                tools = [t for t in tools if t["name"] == choice["function"]["name"]] or tools
            tool = tools[0]
            arguments = self.tool_arguments(tool["name"], tool.get("parameters") or {}, body)
            return {"content": None, "tool_calls": [{"name": tool["name"], "arguments": arguments}]}
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema") or {}
            name, schema = spec.get("name", "response"), spec.get("schema") or {}
            content = self.tool_arguments(name, schema, body)
            return {"content": json.dumps(content), "tool_calls": []}
        return {"content": self.reply_text, "tool_calls": []}

    @staticmethod
    def _tool_calls(answer: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": _as_json(call.get("arguments", {})),
                },
            }
            for call in answer["tool_calls"]
        ]

    @staticmethod
    def _completion_text(answer: dict[str, Any], tool_calls: list[dict[str, Any]]) -> str:
        arguments = [call["function"]["arguments"] for call in tool_calls]
        return " ".join([answer["content"] or "", *arguments])

    def _completion(self, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        tool_calls = self._tool_calls(answer)
        message: dict[str, Any] = {"role": "assistant", "content": answer["content"]}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "gpt-test"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
            ],
            "usage": _usage(body, self._completion_text(answer, tool_calls)),
        }

    def _chunks(self, body: dict[str, Any], answer: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """chat.completion.chunk objects: role, one content delta per word (or the tool call:
        id + name, then its arguments in pieces), the finish reason, then usage if asked for."""
        tool_calls = self._tool_calls(answer)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "gpt-test"),
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**base, "choices": [choice], **({"usage": None} if include_usage else {})}

        content = answer["content"]
        yield chunk({"role": "assistant", "content": "" if content is not None else None})
        for word in re.split(r"(?<=\s)(?=\S)", content or ""):
            if word:
                yield chunk({"content": word})
        for index, call in enumerate(tool_calls):
            function = call["function"]
            head = {**call, "function": {"name": function["name"], "arguments": ""}}
            yield chunk({"tool_calls": [{"index": index, **head}]})
            arguments = function["arguments"]
            for start in range(0, len(arguments), 16):
                piece = {"arguments": arguments[start : start + 16]}
                yield chunk({"tool_calls": [{"index": index, "function": piece}]})
        yield chunk({}, "tool_calls" if tool_calls else "stop")
        if include_usage:
            usage = _usage(body, self._completion_text(answer, tool_calls))
            yield {**base, "choices": [], "usage": usage}

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input", [])
        if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
            inputs = [inputs]  # a single string or a single token array
        dimensions = body.get("dimensions") or 1536
        as_base64 = body.get("encoding_format") == "base64"  # the openai client's default
        data = []
        for index, item in enumerate(inputs):
            packed = _embedding(item, dimensions)
            vector = (
                base64.b64encode(packed).decode()
                if as_base64
                else list(struct.unpack(f"<{dimensions}f", packed))
            )
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(item) // 4 + 1 if isinstance(item, str) else len(item) for item in inputs)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", "text-embedding-test"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


# -- ASGI helpers ----------------------------------------------------------------------------------


async def _send_json(send: Callable, status: int, payload: Any, retry: bool = True) -> None:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    headers = [(b"content-type", b"application/json")]
    if status >= 400:  # keeps the client's retry sleeps short, or disables retrying
        headers.append((b"retry-after-ms", b"1") if retry else (b"x-should-retry", b"false"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text.encode()})


async def _send_sse(send: Callable, chunks: list[dict[str, Any]]) -> None:
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for chunk in chunks:
        event = f"data: {json.dumps(chunk)}\n\n".encode()
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def _drop_connection(send: Callable) -> None:
    # uvicorn's `send` is a bound method of its request cycle, which holds the socket transport.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.close()
        await asyncio.sleep(0.01)  # let uvicorn see the disconnect, so it sends no 500 after us
        return
    # Elsewhere: promise a body and return without it; the server then aborts the connection.
    headers = [(b"content-type", b"application/json"), (b"content-length", b"100")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
