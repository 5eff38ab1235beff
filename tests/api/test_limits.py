"""Request limits and error responses against a real server process (`python -m api`, uvicorn with
httptools): bodies are cut off at MAX_BODY_BYTES on the bytes received (chunked too) before
parsing or auth, the request head is bounded while it arrives, and every error response either
closes the connection (saying so) or leaves it usable for a keep-alive client."""

from __future__ import annotations

import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import auth
from tests.support.servers import ApiServer, start

LIMIT = 64 * 1024
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    data = Path(tempfile.mkdtemp(prefix="delight-limits-"))
    srv = start(data, module="tests.support.faulty_server")
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(data, ignore_errors=True)


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body with no Content-Length: httpx sends it chunked."""
    for _ in range(total // size):
        yield b"x" * size


def local_port(r: httpx.Response) -> int:
    """The client-side port of the connection a response came on (same port: same connection)."""
    return int(r.extensions["network_stream"].get_extra_info("client_addr")[1])


# --- bodies ---------------------------------------------------------------------------------------


def test_chunked_60mb_body_without_auth_is_413_and_never_buffered(server: ApiServer) -> None:
    before = server.peak_rss_mb()
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/api/v1/chat", content=chunks(60 * MB))
        assert r.status_code == 413, r.text
        assert r.json() == {"detail": f"request body larger than {LIMIT} bytes"}
        assert r.headers["connection"] == "close"  # the rest of the body was never read
        # With a valid token and a JSON content type it is the same: the limit comes first.
        r = c.post(
            "/api/v1/chat",
            content=chunks(8 * MB),
            headers={**auth("big-body"), "content-type": "application/json"},
        )
        assert r.status_code == 413
        assert c.get("/health").status_code == 200
    # The server held at most the limit plus one read of the 68 MB it was sent.
    assert server.peak_rss_mb() - before < 16


def test_declared_length_over_the_limit_is_413_before_reading(server: ApiServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/api/v1/goals", content=b"x" * (LIMIT + 1), headers=auth("declared"))
        assert r.status_code == 413 and r.headers["connection"] == "close"
        ok = c.post("/api/v1/memories", json={"content": "x" * 2000}, headers=auth("declared"))
        assert ok.status_code == 201  # a body under the limit is fine


# --- request head -----------------------------------------------------------------------------------


def raw_request(server: ApiServer, head: bytes, *, stream_header_bytes: int = 0) -> bytes:
    """Send `head` (and then `stream_header_bytes` more bytes of an unfinished header line) on a
    raw socket; return whatever the server answered before closing."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        sent = 0
        try:
            while sent < stream_header_bytes:
                s.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass  # the server closed the connection: what matters is what it said first
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except OSError:
            pass
        return answer


def test_50mb_header_line_is_431_and_closed_without_buffering_it(server: ApiServer) -> None:
    before = server.peak_rss_mb()
    answer = raw_request(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ", stream_header_bytes=50 * MB)
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:200]
    assert b"connection: close" in rest.lower()
    assert rest.endswith(b'{"detail":"request headers larger than 16384 bytes"}')
    assert server.peak_rss_mb() - before < 16
    assert httpx.get(f"{server.url}/health").status_code == 200


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({f"x-h{i}": "v" for i in range(101)}, "too many request headers (more than 100)"),
        ({"x-big": "v" * 17_000}, "request headers larger than 16384 bytes"),
    ],
    ids=["count", "size-in-one-read"],
)
def test_head_limits_are_431_with_a_message(server: ApiServer, headers: dict, detail: str) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get("/api/v1/memories", headers={**headers, **auth("heads")})
        assert r.status_code == 431 and r.json() == {"detail": detail}
        assert r.headers["connection"] == "close"
        assert c.get("/health").status_code == 200


# --- error responses and keep-alive ------------------------------------------------------------------


def test_a_500_says_connection_close_and_the_next_request_succeeds(server: ApiServer) -> None:
    """Starlette sends the 500 and re-raises; uvicorn then closes the socket. Without
    `Connection: close` a keep-alive client sends its next request on that socket and fails."""
    failures: list[str] = []
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for _ in range(30):
            r = c.get("/__test__/boom")
            assert r.status_code == 500
            try:
                assert c.get("/health").status_code == 200
            except httpx.TransportError as err:  # the reused socket was being closed
                failures.append(repr(err))
    assert failures == []
    assert r.json() == {"detail": "internal error"} and r.headers["connection"] == "close"
    assert "an unexpected bug" in server.log_text()  # still logged, with its traceback


def test_4xx_responses_keep_the_connection_usable(server: ApiServer) -> None:
    user = auth(f"keepalive-{uuid.uuid4().hex[:6]}")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        first = c.get("/health")
        port = local_port(first)
        for method, path, kwargs, status in (
            ("POST", "/api/v1/chat", {"content": b'{"message": ', "headers": user}, 422),
            ("POST", "/api/v1/chat", {"json": {"message": "hi\x00"}, "headers": user}, 422),
            ("GET", f"/api/v1/threads/{uuid.uuid4()}/state", {"headers": user}, 404),
            ("POST", "/api/v1/chat", {"json": {"message": "hi"}}, 401),
            ("GET", "/api/v1/jobs/x", {"headers": user}, 403),
        ):
            r = c.request(method, path, **kwargs)
            assert r.status_code == status, r.text
            assert "connection" not in r.headers
            again = c.get("/health")
            assert again.status_code == 200 and local_port(again) == port  # the same connection


# --- in-process: nothing written ----------------------------------------------------------------------


async def test_chunked_body_over_the_limit_writes_nothing(client, services) -> None:
    """The limit fires while FastAPI reads the body, before the auth dependency creates the user."""
    subject = f"dev:chunked-{uuid.uuid4().hex[:8]}"

    async def body():
        yield b'{"message": "'
        for _ in range(4):
            yield b"x" * (LIMIT // 2)
        yield b'"}'

    r = await client.post(
        "/api/v1/chat",
        content=body(),
        headers={"Authorization": f"Bearer {subject}", "content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json() == {"detail": f"request body larger than {LIMIT} bytes"}
    assert await services.db.fetchrow("SELECT 1 AS ok FROM users WHERE subject = %s", (subject,)) is None
