"""Text Postgres cannot store (NUL, lone UTF-16 surrogates sent as JSON escapes) answers 422 naming
the field, from every place the service reads text: body fields, query and path parameters, the
Authorization header, the EventSource `?token=`, and JWT claims. Before anything is written and
before any model is called; a database `DataError` that still slips through is a 422 too."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from api.app import create_app
from core.settings import Settings
from tests.support.jwks import AUD, ISS, new_key, sign, write_jwks

NUL = "\\u0000"  # as it travels in JSON text
SURROGATE = "\\ud800"

GLOBAL = ("users", "checkpoints", "checkpoint_writes")
PER_USER = ("threads", "memories", "llm_usage", "goals", "missions", "runs", "progress_events")


async def counts(services, user_id: uuid.UUID) -> dict[str, int]:
    out = {}
    for t in GLOBAL:
        out[t] = (await services.db.fetchrow(f"SELECT count(*) AS n FROM {t}"))["n"]
    for t in PER_USER:
        row = await services.db.fetchrow(f"SELECT count(*) AS n FROM {t} WHERE user_id = %s", (user_id,))
        out[t] = row["n"]
    row = await services.db.fetchrow(
        "SELECT count(*) AS n FROM chat_messages m JOIN threads t ON t.id = m.thread_id WHERE t.user_id = %s",
        (user_id,),
    )
    out["chat_messages"] = row["n"]
    return out


@pytest.fixture
async def me(services):
    """A user with a thread and a goal, made before the bad requests so 'nothing written' is exact."""
    name = f"text-{uuid.uuid4().hex[:8]}"
    user = await services.users.ensure(f"dev:{name}")
    thread = await services.threads.create(user.id)
    goal = await services.goals.create(
        user.id,
        goal_id=uuid.uuid4(),
        title="Learn the cello",
        description="",
        value_category="craft",
        target_date=None,
        emotional_driver=None,
    )
    return {
        "headers": {"Authorization": f"Bearer dev:{name}", "content-type": "application/json"},
        "token": f"dev:{name}",
        "id": user.id,
        "thread": thread,
        "goal": goal.id,
    }


def assert_422(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert [e["field"] for e in body["errors"]] == [field], body
    message = body["errors"][0]["message"]
    assert "NUL" in message or "surrogate" in message, body
    assert body["detail"] == f"invalid request: {field}: {message}"


BODIES = [
    ("POST", "/api/v1/chat", '{"message": "hi%sthere"}', "message"),
    ("POST", "/api/v1/chat/stream", '{"message": "hi%sthere"}', "message"),
    ("POST", "/api/v1/companion/chat", '{"message": "hi%sthere"}', "message"),
    ("POST", "/api/v1/goals", '{"title": "a%sb", "value_category": "health"}', "title"),
    (
        "POST",
        "/api/v1/goals",
        '{"title": "ok", "description": "%s", "value_category": "health"}',
        "description",
    ),
    ("PATCH", "/api/v1/goals/{goal}", '{"title": "x%s"}', "title"),
    ("PATCH", "/api/v1/goals/{goal}", '{"description": "x%s"}', "description"),
    ("POST", "/api/v1/memories", '{"content": "remember %s this"}', "content"),
    ("POST", "/api/v1/memories", '{"content": "fine", "tags": ["ok", "t%s"]}', "tags.1"),
    ("POST", "/api/v1/insights/weekly", '{"week": "2026-W01%s"}', "week"),
]


@pytest.mark.parametrize("char", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    ("method", "path", "body", "field"), BODIES, ids=[f"{b[0]} {b[1]} {b[3]}" for b in BODIES]
)
async def test_body_text(client, services, me, char, method, path, body, field) -> None:
    before = await counts(services, me["id"])
    raw = (body % char).encode()
    json.loads(raw)  # well-formed JSON: the string itself is the problem
    r = await client.request(method, path.format(goal=me["goal"]), content=raw, headers=me["headers"])
    assert_422(r, field)
    assert await counts(services, me["id"]) == before


def queries(me: dict) -> list[tuple[str, str, str]]:
    return [
        ("GET", "/api/v1/memories?q=my%00dog", "q"),
        ("GET", "/api/v1/missions/next?feeling=thrilled%00", "feeling"),
        ("GET", "/api/v1/companion/history?limit=5%00", "limit"),
        ("GET", "/api/v1/goals?status=active%00", "status"),
        ("GET", f"/api/v1/threads/{me['thread']}/history?limit=%00", "limit"),
        ("GET", "/api/v1/companion/stream/%00", "conversation_id"),
        ("GET", "/api/v1/threads/a%00b/state", "thread_id"),
        ("GET", "/api/v1/goals/%00", "goal_id"),
        ("DELETE", "/api/v1/memories/%00", "memory_id"),
        ("POST", "/api/v1/missions/%00/complete", "mission_id"),
        ("GET", "/api/v1/jobs/nightly%00", "job"),
        ("GET", "/api/v1/no/such%00route", "path"),
    ]


async def test_query_and_path_text(client, services, me) -> None:
    before = await counts(services, me["id"])
    for method, path, field in queries(me):
        r = await client.request(method, path, headers=me["headers"])
        assert_422(r, field)
    assert await counts(services, me["id"]) == before


async def test_stream_query_token_and_authorization_header(client, services, me) -> None:
    before = await counts(services, me["id"])
    r = await client.get(f"/api/v1/companion/stream/{me['thread']}?token={me['token']}%00")
    assert_422(r, "token")
    r = await client.get("/api/v1/memories", headers={"Authorization": f"Bearer {me['token']}\x00"})
    assert_422(r, "authorization")
    assert await counts(services, me["id"]) == before


async def test_new_user_with_bad_query_is_not_even_created(client, services) -> None:
    subject = f"dev:ghost-{uuid.uuid4().hex[:8]}"
    r = await client.get("/api/v1/missions/next?feeling=%00", headers={"Authorization": f"Bearer {subject}"})
    assert_422(r, "feeling")
    assert await services.db.fetchrow("SELECT 1 AS ok FROM users WHERE subject = %s", (subject,)) is None


async def test_good_unicode_still_passes(client, me) -> None:
    """Astral characters (a valid surrogate pair in JSON) and other control characters are fine."""
    r = await client.post(
        "/api/v1/memories",
        content=b'{"content": "My cat \\ud83d\\ude3a is called Miso\\u0007"}',
        headers=me["headers"],
    )
    assert r.status_code == 201, r.text
    found = (await client.get("/api/v1/memories?q=cat Miso 😺", headers=me["headers"])).json()
    assert found[0]["content"] == "My cat 😺 is called Miso\x07"


# --- the last line: a DataError past the edge ----------------------------------------------------


@pytest.mark.parametrize("layer", ["psycopg", "sqlalchemy"])
async def test_database_data_error_is_422_without_echo(app, client, services, layer) -> None:
    """A value that reaches Postgres and is refused (here written past the API's checks, through
    each of the two clients) answers 422 with a generic message, never the value itself."""
    path = f"/__test__/data-error/{layer}"
    if not any(getattr(r, "path", None) == path for r in app.router.routes):

        async def write_bad() -> dict:
            secret = "secret-value\x00"
            if layer == "psycopg":
                await services.db.execute("SELECT %s::text", (secret,))
            else:
                await services.memory.add(uuid.uuid4(), "personal", secret, {}, now=datetime.now(UTC))
            return {}

        app.router.add_api_route(path, write_bad, methods=["POST"], include_in_schema=False)
    r = await client.post(path)
    assert r.status_code == 422, r.text
    assert r.json() == {
        "detail": "invalid request: body: contains a value the database cannot store",
        "errors": [{"field": "body", "message": "contains a value the database cannot store"}],
    }
    assert "secret" not in r.text


# --- JWT claims ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return new_key()


def token(key: rsa.RSAPrivateKey, sub: str) -> str:
    return sign(key, sub=sub)


@pytest.fixture(scope="module")
def jwks_path(key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jwks(key, tmp_path_factory.mktemp("jwks") / "jwks.json")


@pytest.fixture(scope="module")
async def jwt_app(pg_url: str, jwks_path: Path):
    path = jwks_path
    app = create_app(
        Settings(database_url=pg_url, auth_mode="jwt", jwt_jwks_file=path, jwt_audience=AUD, jwt_issuer=ISS)
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def jwt_client(jwt_app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=jwt_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jwt", timeout=30) as c:
        yield c


@pytest.mark.parametrize("bad", ["user\x00one", "user\ud800one"], ids=["nul", "surrogate"])
async def test_jwt_subject_text(jwt_app, jwt_client, key, bad) -> None:
    db = jwt_app.state.services.db
    users = (await db.fetchrow("SELECT count(*) AS n FROM users"))["n"]
    headers = {"Authorization": f"Bearer {token(key, bad)}"}
    r = await jwt_client.post("/api/v1/chat", json={"message": "hi"}, headers=headers)
    assert_422(r, "sub")
    # The EventSource route reads the same token from the query string.
    r = await jwt_client.get(f"/api/v1/companion/stream/{uuid.uuid4()}?token={token(key, bad)}")
    assert_422(r, "sub")
    assert (await db.fetchrow("SELECT count(*) AS n FROM users"))["n"] == users


async def test_dev_and_jwt_users_never_share_a_subject(jwt_app, jwt_client, client, key) -> None:
    """On one database, a dev instance's `dev:<id>` user is not the JWT user `<id>`, and no JWT
    can claim a subject in the dev namespace."""
    name = f"shared-{uuid.uuid4().hex[:8]}"
    dev = {"Authorization": f"Bearer dev:{name}"}
    assert (
        await client.post("/api/v1/memories", json={"content": "My PIN is 1234"}, headers=dev)
    ).status_code == 201
    as_jwt = {"Authorization": f"Bearer {token(key, name)}"}
    r = await jwt_client.get("/api/v1/memories", headers=as_jwt)
    assert r.status_code == 200 and r.json() == []
    for sub in (f"dev:{name}", "dev:"):
        r = await jwt_client.get("/api/v1/memories", headers={"Authorization": f"Bearer {token(key, sub)}"})
        assert r.status_code == 401 and r.json()["detail"] == "invalid subject"
    rows = await jwt_app.state.services.db.fetch(
        "SELECT subject FROM users WHERE subject IN (%s, %s) ORDER BY subject", (name, f"dev:{name}")
    )
    assert rows == [{"subject": f"dev:{name}"}, {"subject": name}]
