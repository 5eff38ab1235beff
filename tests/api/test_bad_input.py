"""Every input path: a clear 4xx with a message, and nothing written."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import auth

TABLES = ("users", "threads", "chat_messages", "memories", "llm_usage", "checkpoints")


async def counts(services) -> dict[str, int]:
    out = {}
    for t in TABLES:
        row = await services.db.fetchrow(f"SELECT count(*) AS n FROM {t}")
        out[t] = row["n"]
    return out


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> tuple[str, str]:
    """A user with one thread, created before the bad requests so 'nothing written' is exact."""
    user = f"owner-{uuid.uuid4().hex[:8]}"
    r = await client.post("/api/v1/chat", json={"message": "hello"}, headers=auth(user))
    return user, r.json()["thread_id"]


BAD_CHAT_BODIES = [
    ("malformed json", b'{"message": "hi"', "body: malformed JSON at character"),
    ("not an object", b'["hi"]', "valid dictionary"),
    ("missing message", b"{}", "message: Field required"),
    ("empty message", b'{"message": ""}', "message: String should have at least 1 character"),
    ("oversized message", ('{"message": "%s"}' % ("x" * 5001)).encode(), "at most 5000"),
    ("unknown field", b'{"message": "hi", "mood": "ok"}', "mood: Extra inputs are not permitted"),
    ("thread id not a uuid", b'{"message": "hi", "thread_id": "abc"}', "thread_id"),
    ("message wrong type", b'{"message": 42}', "message: Input should be a valid string"),
]


@pytest.mark.parametrize("path", ["/api/v1/chat", "/api/v1/chat/stream"])
@pytest.mark.parametrize(("case", "raw", "expect"), BAD_CHAT_BODIES, ids=[c[0] for c in BAD_CHAT_BODIES])
async def test_bad_chat_bodies(client, services, owner, path, case, raw, expect) -> None:
    before = await counts(services)
    r = await client.post(path, content=raw, headers={**auth(owner[0]), "content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert expect in r.json()["detail"]
    assert await counts(services) == before


@pytest.mark.parametrize(
    "body",
    [
        {"message": ""},
        {"message": "hi", "conversation_id": "nope"},
        {"message": "hi", "extra": 1},
        {},
    ],
)
async def test_bad_companion_bodies(client, services, owner, body) -> None:
    before = await counts(services)
    r = await client.post("/api/v1/companion/chat", json=body, headers=auth(owner[0]))
    assert r.status_code == 422 and r.json()["detail"].startswith("invalid request")
    assert await counts(services) == before


async def test_someone_elses_thread_is_404_and_writes_nothing(client, services, owner) -> None:
    intruder = auth(f"intruder-{uuid.uuid4().hex[:8]}")
    await client.get("/api/v1/memories", headers=intruder)  # the intruder's user row exists first
    before = await counts(services)
    for path, key in (
        ("/api/v1/chat", "thread_id"),
        ("/api/v1/chat/stream", "thread_id"),
        ("/api/v1/companion/chat", "conversation_id"),
    ):
        r = await client.post(path, json={"message": "hi", key: owner[1]}, headers=intruder)
        assert r.status_code == 404 and r.json() == {"detail": "thread not found"}
    # An unknown (never created) thread id answers the same: no way to probe which exists.
    r = await client.post(
        "/api/v1/chat", json={"message": "hi", "thread_id": str(uuid.uuid4())}, headers=intruder
    )
    assert r.status_code == 404
    assert await counts(services) == before


async def test_oversized_body_is_413(client, services, owner) -> None:
    before = await counts(services)
    r = await client.post(
        "/api/v1/chat",
        content=b'{"message": "' + b"x" * 70_000 + b'"}',
        headers={**auth(owner[0]), "content-type": "application/json"},
    )
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    assert await counts(services) == before


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Bearer nope"}, "malformed dev token"),
        ({"Authorization": "Bearer dev:"}, "malformed dev token"),
        ({"Authorization": "Bearer dev:has space"}, "malformed dev token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing bearer token"),
    ],
)
async def test_auth_required_everywhere_but_health(client, services, headers, detail) -> None:
    before = await counts(services)
    for method, path in (
        ("POST", "/api/v1/chat"),
        ("POST", "/api/v1/chat/stream"),
        ("POST", "/api/v1/companion/chat"),
        ("GET", "/api/v1/companion/history"),
        ("GET", "/api/v1/memories"),
        ("POST", "/api/v1/memories"),
        ("GET", f"/api/v1/threads/{uuid.uuid4()}/state"),
        ("DELETE", f"/api/v1/memories/{uuid.uuid4()}"),
    ):
        r = await client.request(method, path, json={"message": "hi", "content": "x"}, headers=headers)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["detail"] == detail
        assert r.headers["www-authenticate"] == "Bearer"
    assert await counts(services) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/memories?tier=secret", None),
        ("GET", "/api/v1/memories?limit=0", None),
        ("GET", "/api/v1/memories?limit=10000", None),
        ("GET", "/api/v1/memories?q=", None),
        ("GET", "/api/v1/memories?q=" + "x" * 501, None),
        ("POST", "/api/v1/memories", {"content": ""}),
        ("POST", "/api/v1/memories", {"content": "x" * 2001}),
        ("POST", "/api/v1/memories", {"content": "ok", "tier": "project"}),
        ("POST", "/api/v1/memories", {"content": "ok", "tags": "not-a-list"}),
        ("DELETE", "/api/v1/memories/not-a-uuid", None),
        ("GET", "/api/v1/threads/not-a-uuid/state", None),
        ("GET", f"/api/v1/threads/{uuid.uuid4()}/history?limit=0", None),
        ("GET", "/api/v1/companion/history?limit=0", None),
        ("GET", "/api/v1/companion/history?limit=abc", None),
    ],
)
async def test_bad_query_and_path_params(client, services, owner, method, path, body) -> None:
    before = await counts(services)
    r = await client.request(method, path, json=body, headers=auth(owner[0]))
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("invalid request: ")
    assert await counts(services) == before
